"""Admin pages: rq-dashboard and the health page, for admins only; the dashboard's CSRF."""

import base64
import hashlib
import json
import re

import pytest
from rq.job import Job

from expense_sync.extensions import db, get_queue
from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount

PAGES = [
    "/admin/health",
    "/admin/rq/",
    "/admin/rq/0/view/jobs",
    "/admin/rq/0/data/queues.json",
    "/admin/rq/static/css/main.css",
]


@pytest.fixture
def admin(auth):
    auth.create("admin@example.cr", admin=True)
    auth.login("admin@example.cr")


def queued_job(app) -> str:
    with app.app_context():
        return get_queue().enqueue("expense_sync.jobs.start_sync", 0).id


def job_exists(app, job_id) -> bool:
    with app.app_context():
        return Job.exists(job_id, connection=get_queue().connection)


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


@pytest.mark.parametrize("path", [*PAGES, "/admin/rq", "/admin/nothing-here"])
def test_other_users_get_404(client, auth, path):
    auth.create()
    auth.login()
    assert client.get(path, follow_redirects=True).status_code == 404


def test_users_cannot_post_dashboard_actions(app, client, auth):
    job_id = queued_job(app)
    auth.create()
    auth.login()
    token = re.search(
        r'name="csrf-token" content="([^"]+)"', client.get("/accounts").get_data(as_text=True)
    ).group(1)
    response = client.post(f"/admin/rq/job/{job_id}/delete", headers={"X-CSRFToken": token})
    assert response.status_code == 404
    assert job_exists(app, job_id)


def test_admin_sees_the_queues(app, client, admin):
    queued_job(app)
    page = client.get("/admin/rq/")
    assert page.status_code == 200 and "RQ dashboard" in page.get_data(as_text=True)
    queues = client.get("/admin/rq/0/data/queues.json").json["queues"]
    assert [(q["name"], q["count"]) for q in queues] == [("sync", 1)]


def test_dashboard_runs_only_its_own_inline_script(client, admin):
    page = client.get("/admin/rq/0/view/jobs")
    html = page.get_data(as_text=True)
    inline = re.findall(r"<script type=\"text/javascript\">(.*?)</script>", html, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    script_src = re.search(r"script-src ([^;]*);", page.headers["Content-Security-Policy"])[1]
    assert script_src == f"'self' 'unsafe-eval' 'sha256-{digest}'"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_dashboard_actions_need_our_csrf_token(app, client, admin):
    job_id = queued_job(app)
    # A cross-site page can make the browser post, but cannot read the token.
    forged = client.post(
        f"/admin/rq/job/{job_id}/delete", headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 400
    assert client.post("/admin/rq/queue/sync/queued/empty").status_code == 400
    assert job_exists(app, job_id)

    client.get("/admin/rq/")  # the dashboard's script reads this cookie and sends it back
    cookie = client.get_cookie("_csrf_token", path="/admin/rq")
    assert cookie and cookie.same_site == "Strict" and not cookie.http_only
    response = client.post(
        f"/admin/rq/job/{job_id}/delete",
        headers={"X-CSRFToken": cookie.value, "Origin": "http://localhost"},
    )
    assert response.json == {"status": "OK"}
    assert not job_exists(app, job_id)


def test_requeue_all_is_not_a_link(client, admin):
    assert client.get("/admin/rq/requeue/sync").status_code == 405


def failed_row(app, message="La contraseña fue rechazada por el servidor.") -> None:
    with app.app_context():
        from expense_sync.models import User, now_utc

        user = db.session.execute(db.select(User).filter_by(email="admin@example.cr")).scalar_one()
        account = EmailAccount(
            user_id=user.id,
            bank="bac",
            address="ana@bac.cr",
            source_kind="maildir",
            local_path="/tmp",
        )
        session = SyncSession(user_id=user.id, status="failed")
        session.accounts = [
            SyncSessionAccount(
                email_account=account,
                status="failed",
                error_kind="authentication",
                error_message=message,
                finished_at=now_utc(),
            )
        ]
        db.session.add(session)
        db.session.commit()


def test_health_page_polls_a_fragment_with_the_figures(app, client, admin):
    failed_row(app, "<b>La contraseña</b> fue rechazada.")
    page = client.get("/admin/health").get_data(as_text=True)
    assert "Salud del sistema" in page and 'href="/admin/health"' in page  # in the navigation
    fragment = client.get("/admin/health", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="health"')
    assert 'hx-trigger="every 5s"' in fragment and 'hx-get="/admin/health"' in fragment
    assert "&lt;b&gt;La contraseña&lt;/b&gt; fue rechazada." in fragment
    assert "Autenticación" in fragment and "ana@bac.cr" in fragment
    assert re.search(r'id="health-queue">0 en espera<', fragment)


def test_health_throughput_comes_from_the_previous_poll(app, client, admin):
    from expense_sync import metrics

    fragment = client.get("/admin/health", headers={"HX-Request": "true"}).get_data(as_text=True)
    shown = json.loads(re.search(r"hx-vals='([^']*)'", fragment)[1])
    emails, at = shown["emails"], shown["at"]
    metrics.record_batch(50, 0, 0)
    again = client.get(
        "/admin/health",
        query_string={"emails": emails, "at": at - 10},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    rate = float(re.search(r'id="health-throughput">([\d.]+)<', again)[1])
    assert 4.0 <= rate <= 5.0  # 50 emails in a little over 10 s
    stale = client.get(
        "/admin/health",
        query_string={"emails": emails, "at": at - 600},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert 'id="health-throughput">—<' in stale


@pytest.mark.parametrize(
    "path", ["/admin/rq/0/view/job/no-such-job", "/admin/rq/0/data/job/no-such-job.json"]
)
def test_an_unknown_job_is_not_found_not_an_error(client, admin, path):
    response = client.get(path)
    assert response.status_code == 404
