"""/metrics: who may read it, what a sync and a stream record, and the alert rules."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import (
    SHARED_SAMPLES,
    expected_transactions,
    imap_account,
    new_imap_user,
    sample_messages,
)
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from worker_process import run_worker_process

from expense_sync import metrics
from expense_sync.events import get_hub
from expense_sync.extensions import db, get_redis
from expense_sync.models import EmailAccount, SyncSession, User
from expense_sync.progress import Progress
from expense_sync.sync import control

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def scrape(client, **headers) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def test_anonymous_scraper_gets_401_not_a_login_page(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_reads_metrics_and_no_token_configured_means_admins_only(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    assert "expense_sync_queue_depth" in response.get_data(as_text=True)
    app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_users_get_404_and_admins_the_metrics(app, client, auth):
    auth.create()
    auth.login()
    assert client.get("/metrics").status_code == 404
    auth.logout()
    auth.create("admin@example.cr", admin=True)
    auth.login("admin@example.cr")
    assert ("expense_sync_queue_up", ()) in scrape(client)


def test_queue_depth_is_read_at_scrape_time(app, client):
    app.config["METRICS_TOKEN"] = "t"
    with app.app_context():
        from expense_sync.extensions import get_queue

        for _ in range(3):
            get_queue().enqueue("expense_sync.jobs.start_sync", 0)
    samples = scrape(client, Authorization="Bearer t")
    assert samples[("expense_sync_queue_depth", (("queue", "sync"),))] == 3
    assert samples[("expense_sync_queue_up", ())] == 1


def test_a_sync_records_emails_expenses_and_errors(app, client, dovecot, tmp_path, monkeypatch):
    # The worker runs in a process of its own with a metrics directory of its own, as on
    # another host; the web's scrape reads another directory and still shows what the
    # worker's forked work-horses counted: those counts are kept in Redis.
    broken = (SHARED_SAMPLES / "emails" / "00001.eml").read_bytes()
    broken = broken.split(b"\n\n", 1)[0] + b"\n\nNotificacion de transaccion sin datos\n"
    broken = broken.replace(b"Message-ID: <", b"Message-ID: <broken-")
    good = new_imap_user(dovecot, [*sample_messages(), broken])
    bad = new_imap_user(dovecot, sample_messages()[:5])
    with app.app_context():
        user = User(email="ana@example.cr", password_hash="x")
        db.session.add(user)
        db.session.flush()
        imap_account(user.id, dovecot, good)
        imap_account(user.id, dovecot, bad, password="equivocada")
        db.session.commit()
        token = control.start(user).token
    worker_host, web_host = tmp_path / "worker-metrics", tmp_path / "web-metrics"
    worker_host.mkdir()
    web_host.mkdir()
    run_worker_process(app, PROMETHEUS_MULTIPROC_DIR=str(worker_host))

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(web_host))
    app.config["METRICS_TOKEN"] = "t"
    samples = scrape(client, Authorization="Bearer t")
    with app.app_context():
        session = db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()
        assert session.status == "failed"
        assert (session.detected_expenses, session.error_count) == (
            sum(1 for t in expected_transactions() if t[1] not in ("refund", "transfer_in")),
            1,
        )
        expected = {
            ("expense_sync_emails_processed_total", ()): session.processed_emails,
            ("expense_sync_expenses_detected_total", ()): session.detected_expenses,
            ("expense_sync_errors_total", (("type", "unreadable_email"),)): 1,
            ("expense_sync_errors_total", (("type", "authentication"),)): 1,
            ("expense_sync_errors_total", (("type", "network"),)): 0,
            ("expense_sync_syncs_finished_total", (("outcome", "failed"),)): 1,
            ("expense_sync_syncs_finished_total", (("outcome", "completed"),)): 0,
        }
    assert session.processed_emails > 100
    assert {key: samples.get(key) for key in expected} == expected
    assert samples[("expense_sync_broadcasts_total", (("kind", "state"),))] >= 4
    # No files per forked work-horse (RQ forks one per job, 3 ran): the worker's own only.
    pids = {re.sub(r"^[a-z_]+_", "", p.stem) for p in worker_host.iterdir()}
    assert len(pids) == 1, sorted(p.name for p in worker_host.iterdir())


def test_a_stream_counts_itself_its_events_and_their_latency(app, client, auth, tmp_path):
    auth.create()
    auth.login()
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        db.session.add(
            EmailAccount(
                user_id=user.id,
                bank="bac",
                address="a@x.cr",
                source_kind="maildir",
                local_path=str(tmp_path),
            )
        )
        db.session.commit()
        session = control.start(user)
        token, account_id = session.token, session.accounts[0].email_account_id
    open_before = REGISTRY.get_sample_value("expense_sync_open_streams")
    events_before = REGISTRY.get_sample_value("expense_sync_stream_events_total")
    latency_before = REGISTRY.get_sample_value("expense_sync_broadcast_latency_seconds_count")

    response = client.get(f"/sync_sessions/{token}/stream", buffered=False)
    chunks = (c for c in response.response if c and not c.startswith(b":"))
    next(chunks)  # the snapshot: not a broadcast, no latency
    assert REGISTRY.get_sample_value("expense_sync_open_streams") == open_before + 1
    assert get_hub(app).connected.wait(5)
    for status in ("processing", "completed"):
        with app.app_context():
            progress = Progress(get_redis())
            progress.set_status(token, "running" if status == "processing" else "completed")
            progress.update_account(token, account_id, status=status, processed=10, total=10)
            progress.publish(token, "state", force=True)
        next(chunks)
    assert list(chunks) == []  # the terminal event ends the stream
    response.close()
    assert REGISTRY.get_sample_value("expense_sync_open_streams") == open_before
    assert REGISTRY.get_sample_value("expense_sync_stream_events_total") == events_before + 2
    after = REGISTRY.get_sample_value("expense_sync_broadcast_latency_seconds_count")
    assert after == latency_before + 2
    assert (
        REGISTRY.get_sample_value("expense_sync_broadcast_latency_seconds_bucket", {"le": "+Inf"})
        >= 2
    )


def test_refused_subscriptions_are_counted_by_reason(app, client, auth):
    def refused(reason):
        return REGISTRY.get_sample_value("expense_sync_stream_refusals_total", {"reason": reason})

    before = {reason: refused(reason) for reason in metrics.REFUSAL_REASONS}
    client.get("/sync_sessions/nope/stream")
    auth.create()
    auth.login()
    client.get("/sync_sessions/nope/stream", headers={"Origin": "https://evil.example"})
    for _ in range(10):  # the foreign-origin attempt counted towards the 10 per minute
        last = client.get("/sync_sessions/nope/stream")
    assert last.status_code == 429
    assert {reason: refused(reason) - before[reason] for reason in before} == {
        "not_logged_in": 1,
        "foreign_origin": 1,
        "not_found": 9,
        "rate_limited": 1,
    }


@pytest.mark.parametrize(
    "q, buckets, expected",
    [
        (0.5, [(0.1, 50), (0.2, 100), (float("inf"), 100)], 0.1),
        (0.95, [(0.1, 50), (0.2, 100), (float("inf"), 100)], 0.19),
        (0.99, [(0.1, 0), (0.2, 0), (float("inf"), 10)], 0.2),
        (0.5, [(0.1, 0), (float("inf"), 0)], None),
        (0.5, [], None),
    ],
)
def test_quantile_matches_prometheus_histogram_quantile(q, buckets, expected):
    assert metrics.quantile(q, buckets) == pytest.approx(expected)


def test_eta_accuracy_grades_only_completed_syncs(app, client):
    app.config["METRICS_TOKEN"] = "t"

    def histogram():
        samples = scrape(client, Authorization="Bearer t")
        return (
            samples[("expense_sync_eta_relative_error_count", ())],
            samples[("expense_sync_eta_relative_error_sum", ())],
            samples[("expense_sync_eta_relative_error_bucket", (("le", "0.3"),))],
            samples[("expense_sync_eta_relative_error_bucket", (("le", "0.5"),))],
        )

    assert histogram() == (0, 0, 0, 0)
    metrics.record_eta_accuracy("completed", (1000.0, 60), now=1100.0)  # 60 s shown, 100 taken
    count, total, below_30, below_50 = histogram()
    assert (count, below_30, below_50) == (1, 0, 1) and total == pytest.approx(0.4)
    metrics.record_eta_accuracy("failed", (1000.0, 60), now=1100.0)
    metrics.record_eta_accuracy("completed", None)
    metrics.record_eta_accuracy("completed", (1000.0, 0), now=1000.5)  # too short to judge
    assert histogram()[0] == 1


def test_halfway_estimate_is_the_first_one_shown_past_half_way(app):
    with app.app_context():
        progress = Progress(get_redis())
        progress.start_session(
            "t",
            status="running",
            started_at_ms=1,
            accounts=[{"id": 1, "bank": "BAC", "total": 100}],
        )
        for processed in (40, 60, 80):
            progress.update_account("t", 1, status="processing", processed=processed)
            progress.publish("t", force=True)
            if processed == 40:
                assert progress.halfway_estimate("t") is None
            if processed == 60:
                first = progress.halfway_estimate("t")
        assert first is not None and first == progress.halfway_estimate("t")


def test_alert_rules_only_use_metrics_we_export(client, app):
    app.config["METRICS_TOKEN"] = "t"
    exported = {name for name, _ in scrape(client, Authorization="Bearer t")}
    used = set(re.findall(r"expense_sync_[a-z_]+", (RULES / "alerts.yml").read_text()))
    assert used and used <= exported, used - exported


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool missing (make test installs Debian's prometheus package)",
)
def test_alert_rules_are_valid_and_fire_when_they_should():
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(["promtool", *command], cwd=RULES, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
