"""The progress contract: percentages, the time-remaining estimate, and what counting
publishes (real Redis, the real job and the widget it feeds)."""

import json
import re

import pytest

from expense_sync.auth import create_user
from expense_sync.demo import generate_notifications, write_maildir
from expense_sync.extensions import db, get_redis
from expense_sync.jobs import start_sync
from expense_sync.models import EmailAccount, User
from expense_sync.progress import (
    EXPIRE_AFTER_END,
    AccountLock,
    Progress,
    account_key,
    account_lock_key,
    build_state,
    events_key,
    percentage,
    scan_key,
    session_key,
    time_remaining,
)
from expense_sync.progress_rows import seed_progress
from expense_sync.sync import control


@pytest.mark.parametrize(
    "processed, total, status, expected",
    [
        (0, 0, "running", 0),
        (0, 0, "completed", 100),
        (450, 1000, "running", 45),
        (999, 1000, "running", 99),
        (1000, 1000, "running", 100),
        (1200, 1000, "running", 100),
    ],
)
def test_percentage_never_passes_100(processed, total, status, expected):
    assert percentage(processed, total, status) == expected


def test_time_remaining_weights_recent_rate_over_overall():
    now = 10_000.0
    started = now - 600  # 600 emails in 10 min overall: 1 email/s
    # In the last five minutes 1,500 emails: 5 emails/s recently.
    samples = [f"1:{now - 300 + i * 30}:150" for i in range(10)]
    remaining = time_remaining(600, 600 + 3_800, started, samples, now=now)
    rate = 0.7 * (1500 / 300) + 0.3 * (600 / 600)
    assert remaining == round(3_800 / rate)


def test_time_remaining_unknown_before_progress_and_zero_at_the_end():
    assert time_remaining(0, 100, 1.0, [], now=50.0) is None
    assert time_remaining(100, 100, 1.0, [], now=50.0) == 0
    assert time_remaining(50, 100, 0.0, [], now=50.0) is None


def test_state_adds_accounts_and_estimates_only_while_running():
    accounts = [
        {"processed_emails": 150, "total_emails": 150, "detected_expenses": 120, "error_count": 1},
        {"processed_emails": 300, "total_emails": 650, "detected_expenses": 250, "error_count": 0},
        {"processed_emails": 0, "total_emails": 200, "detected_expenses": 0, "error_count": 0},
    ]
    state = build_state("running", accounts, started_at_ms=1_000, now=61.0)
    assert (state["processed_emails"], state["total_emails"], state["progress_percentage"]) == (
        450,
        1000,
        45,
    )
    assert (state["detected_expenses"], state["error_count"]) == (370, 1)
    assert state["time_remaining_seconds"] == round(550 / (450 / 60))
    assert build_state("paused", accounts, started_at_ms=1_000)["time_remaining_seconds"] is None


def test_counting_publishes_each_accounts_total_as_soon_as_it_is_known(app, tmp_path):
    """start_sync counts account after account; every count goes out before the next one."""
    with app.app_context():
        user = create_user("ana@example.cr", "x" * 12)
        for n, size in enumerate((3, 5)):
            maildir = tmp_path / f"box{n}"
            write_maildir(maildir, generate_notifications(size, seed=n, to_address=user.email))
            db.session.add(
                EmailAccount(
                    user=user,
                    bank="bac",
                    address=user.email,
                    source_kind="maildir",
                    local_path=str(maildir),
                )
            )
        db.session.commit()
        session = control.start(user)
        start_sync(session.id)
        events = [
            json.loads(fields[b"data"])["state"]
            for _, fields in get_redis().xrange(events_key(session.token))
        ]
    counting = [
        (e["counting"], [(a["counted"], a["total_emails"]) for a in e["accounts"]])
        for e in events
        if e["status"] == "running"
    ]
    assert counting[0] == ({"done": 0, "total": 2}, [(False, 0), (False, 0)])
    assert ({"done": 1, "total": 2}, [(True, 3), (False, 0)]) in counting
    assert ({"done": 2, "total": 2}, [(True, 3), (True, 5)]) in counting
    assert counting[-1][0] is None  # counted: the widget says the sync is in progress


def test_the_widget_says_which_accounts_are_still_being_counted(app, auth, client, tmp_path):
    auth.create()
    auth.login()
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        accounts = [
            EmailAccount(
                user_id=user.id,
                bank=bank,
                address=f"{bank}@x.cr",
                source_kind="maildir",
                local_path=str(tmp_path),
            )
            for bank in ("bac", "promerica", "davibank")
        ]
        db.session.add_all(accounts)
        db.session.commit()
        session = control.start(user)
        token, first = session.token, accounts[0].id
        progress = Progress(get_redis())
        seed_progress(session)
        progress.set_status(token, "running", counting="1")
        progress.update_account(token, first, counted=1, total=12059)
    html = client.get(f"/sync_sessions/{token}/status").get_data(as_text=True)
    seen = re.sub(r"[ \n]+", " ", re.sub(r"<[^>]+>", " ", html))  # not NBSP
    assert "Contando correos… 1/3 cuentas" in seen
    assert seen.count("Contando correos…") == 3  # the status line and two accounts
    assert "0 / 12\N{NO-BREAK SPACE}059" in seen
    assert 'aria-valuetext="Contando correos"' in html
    with app.app_context():
        Progress(get_redis()).set_status(token, "running", counting="")
    html = client.get(f"/sync_sessions/{token}/status").get_data(as_text=True)
    assert "Contando" not in html and "Sincronización en progreso" in html
    assert 'aria-valuetext="0 % · 0 de 12\N{NO-BREAK SPACE}059 correos"' in html
    assert 'id="sync-status-text" role="status" aria-live="polite"' in html


def test_failed_accounts_are_counted_apart_from_unreadable_mail():
    accounts = [
        {
            "status": "failed",
            "processed_emails": 0,
            "total_emails": 0,
            "detected_expenses": 0,
            "error_count": 0,
        },
        {
            "status": "completed",
            "processed_emails": 5,
            "total_emails": 5,
            "detected_expenses": 3,
            "error_count": 2,
        },
    ]
    state = build_state("failed", accounts)
    assert (state["error_count"], state["failed_accounts"], state["counting"]) == (2, 1, None)


def test_the_job_reads_what_counting_found_and_the_mail_that_came_since(app, tmp_path):
    from expense_sync.mailboxes import open_source
    from expense_sync.parsing import bank_sender_domains
    from expense_sync.rq_worker import make_worker, redis_connection

    with app.app_context():
        user = create_user("ana@example.cr", "x" * 12)
        maildir = tmp_path / "box"
        write_maildir(maildir, generate_notifications(6, seed=1, to_address=user.email))
        db.session.add(
            EmailAccount(
                user=user,
                bank="bac",
                address=user.email,
                source_kind="maildir",
                local_path=str(maildir),
            )
        )
        db.session.commit()
        session = control.start(user)
        start_sync(session.id)
        counted = db.session.get(type(session), session.id).accounts[0].total_emails
        # Mail that arrives between counting and the account's job is read too.
        later = list(generate_notifications(4, seed=2, to_address=user.email))
        write_maildir(maildir, later)
        write_maildir(tmp_path / "later", later)
        with open_source("maildir", path=str(tmp_path / "later")) as source:
            arrived = len(source.scan(None, 0, [*bank_sender_domains(), user.email]).uids)
        make_worker(app, redis_connection(app.config["REDIS_URL"])).work(burst=True)
        db.session.expire_all()
        done = db.session.get(type(session), session.id)
        assert done.status == "completed"
        assert counted == 6 and arrived > 0
        assert done.processed_emails == counted + arrived == done.total_emails
        kept = Progress(get_redis()).take_scan(done.token, done.accounts[0].email_account_id)
        assert kept is None  # the job took what counting kept


def test_the_account_lock_is_one_holders_and_its_own_job_takes_it_back(redis_client):
    first = AccountLock(redis_client, 7, "job-1", timeout=30)
    other = AccountLock(redis_client, 7, "job-2", timeout=30)
    assert first.claim() and not other.claim(wait=0.3)
    # The same job run again after its work-horse was killed: at once, and kept longer.
    redis_client.pexpire(account_lock_key(7), 1000)
    assert AccountLock(redis_client, 7, "job-1", timeout=30).claim()
    assert redis_client.pttl(account_lock_key(7)) > 25_000
    assert first.extend() and not other.extend() and not other.release()
    assert first.release() and not first.extend()
    assert other.claim() and redis_client.get(account_lock_key(7)) == b"job-2"


def test_an_ended_sessions_keys_are_the_ones_it_named_and_only_they_expire(redis_client):
    progress = Progress(redis_client)
    accounts = [{"id": i, "bank": "BAC", "status": "pending", "total": 0} for i in (3, 4)]
    progress.start_session("tok", status="running", started_at_ms=1, accounts=accounts)
    progress.start_session("other", status="running", started_at_ms=1, accounts=accounts[:1])
    progress.keep_scan("tok", 4, start=(None, 0), uidvalidity=1, uids=[1, 2], reset=False)
    assert progress.publish("tok", "state", force=True)
    keys = progress.session_keys("tok")
    assert {
        session_key("tok"),
        events_key("tok"),
        account_key("tok", 3),
        account_key("tok", 4),
        scan_key("tok", 4),
    } <= set(keys)
    assert not any("other" in key for key in keys)
    progress.finish("tok")
    assert all(
        0 < redis_client.ttl(key) <= EXPIRE_AFTER_END for key in keys if redis_client.exists(key)
    )
    assert redis_client.ttl(session_key("other")) > EXPIRE_AFTER_END
    progress.forget("tok")
    assert not any(redis_client.exists(key) for key in keys)


def test_the_time_remaining_reads_as_babel_words_it_whatever_the_estimate():
    from babel.dates import format_timedelta

    from expense_sync.formatting import remaining

    assert remaining(None) == "" and remaining(59) == "Tiempo restante: menos de un minuto"
    assert remaining(90) == "Tiempo restante: ~2 minutos"
    assert remaining(3930) == "Tiempo restante: ~66 minutos"  # 1.09 h: not yet "1 hora"
    for seconds in [*range(60, 200_000, 7), 86_400 * 40, 31_536_000 * 3 + 99]:
        words = format_timedelta(seconds, threshold=1.1, locale="es_CR")
        assert remaining(seconds) == f"Tiempo restante: ~{words}", seconds
