"""Logs: JSON lines with the request id, stream attempts audited, never a secret or an email."""

import json
import logging

import pytest
from helpers import IMAP_PASSWORD, imap_account, new_imap_user, sample_messages
from worker_process import run_worker_process

from expense_sync import create_app
from expense_sync.extensions import db
from expense_sync.logs import redact
from expense_sync.mailboxes.imap import ImapSettings
from expense_sync.models import User
from expense_sync.sync import control


@pytest.fixture
def json_app(app):
    """The test app's database and Redis, logging as production does."""
    keys = ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "RATELIMIT_STORAGE_URI", "SERVER_NAME")
    return create_app(
        {"TESTING": True, "LOG_FORMAT": "json", **{key: app.config[key] for key in keys}}
    )


def json_lines(text: str) -> list[dict]:
    # Migrations in the test fixtures leave alembic's own handler on the root logger too.
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    "text, secret",
    [
        ("login failed password=hunter2 for ana", "hunter2"),
        ("{'imap_password': 'hunter2', 'host': 'mail'}", "hunter2"),
        ('{"token": "abc.def-123"}', "abc.def-123"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x", "eyJhbGciOiJIUzI1NiJ9"),
        ("connecting to redis://:hunter2@cache:6379/0", "hunter2"),
        ("> b'0002 LOGIN ana \"hunter2\"'", "hunter2"),
        ("SECRET_KEY=abcdefghijklmnop", "abcdefghijklmnop"),
    ],
)
def test_redact_hides_secret_values(text, secret):
    assert secret not in redact(text)
    assert "[REDACTED]" in redact(text)


def test_redact_leaves_ordinary_lines_alone():
    line = "stream opened user=3 ip=127.0.0.1 (4 accounts, 120 emails)"
    assert redact(line) == line


def test_imap_settings_repr_hides_the_password():
    settings = ImapSettings(
        host="imap.example.cr", port=993, security="ssl", username="ana", password="hunter2"
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


def test_json_lines_carry_the_request_id_echoed_in_the_response(json_app, capsys):
    client = json_app.test_client()
    response = client.get("/sync_sessions/abc/stream", headers={"X-Request-ID": "req-42.a"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "req-42.a"
    [line] = [e for e in json_lines(capsys.readouterr().err) if "stream refused" in e["message"]]
    assert line["request_id"] == "req-42.a"
    assert line["level"] == "INFO" and line["logger"] == "expense_sync.sync.stream"
    assert line["message"] == "stream refused: not logged in user=None ip=127.0.0.1"


def test_a_request_id_is_made_when_missing_or_unsafe(client):
    made = client.get("/login").headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    # Spaces and quotes could forge fields in text logs; overlong ids fill them.
    for unsafe in ('x" level=ERROR', "a" * 200):
        echoed = client.get("/login", headers={"X-Request-ID": unsafe}).headers["X-Request-ID"]
        assert len(echoed) == 32 and echoed != made


def test_extras_and_tracebacks_are_redacted_too(json_app, capsys):
    log = logging.getLogger("expense_sync.test")
    try:
        raise ValueError("IMAP said: LOGIN ana hunter2 rejected")
    except ValueError:
        log.exception(
            "login failed", extra={"password": "hunter2", "url": "redis://:p4ss@h/0", "account": 7}
        )
    [line] = [e for e in json_lines(capsys.readouterr().err) if e["message"] == "login failed"]
    assert "hunter2" not in json.dumps(line) and "p4ss" not in json.dumps(line)
    assert line["account"] == 7 and line["password"] == "[REDACTED]"
    assert "ValueError" in line["exception"]


def test_every_stream_attempt_is_logged_with_user_ip_and_outcome(app, client, auth, caplog):
    caplog.set_level(logging.INFO, logger="expense_sync.sync.stream")
    client.get("/sync_sessions/nope/stream")
    user_id = auth.create()
    auth.login()
    with app.app_context():
        db.session.get(User, user_id).accounts  # noqa: B018 (loads the relationship)
        from expense_sync.models import EmailAccount

        db.session.add(
            EmailAccount(
                user_id=user_id,
                bank="bac",
                address="a@x.cr",
                source_kind="maildir",
                local_path="/nonexistent",
            )
        )
        db.session.commit()
        token = control.start(db.session.get(User, user_id)).token
    client.get("/sync_sessions/nope/stream")
    client.get(f"/sync_sessions/{token}/stream", headers={"Origin": "https://evil.example"})
    client.get(f"/sync_sessions/{token}/stream", buffered=False).close()
    for _ in range(10):
        client.get("/sync_sessions/nope/stream")
    lines = [r.getMessage() for r in caplog.records if r.name == "expense_sync.sync.stream"]
    assert lines[:4] == [
        "stream refused: not logged in user=None ip=127.0.0.1",
        f"stream refused: not found user={user_id} ip=127.0.0.1",
        f"stream refused: foreign origin user={user_id} ip=127.0.0.1",
        f"stream opened user={user_id} ip=127.0.0.1",
    ]
    assert lines[-1] == f"stream refused: rate limited user={user_id} ip=127.0.0.1"


def test_the_users_stream_refusals_are_logged_too(app, client, auth, caplog):
    caplog.set_level(logging.INFO, logger="expense_sync.sync.stream")
    client.get("/sync/stream")
    auth.create()
    auth.login()
    client.get("/sync/stream", headers={"Origin": "https://evil.example"})
    lines = [r.getMessage() for r in caplog.records if r.name == "expense_sync.sync.stream"]
    assert lines[0] == "stream refused: not logged in user=None ip=127.0.0.1"
    assert lines[1].startswith("stream refused: foreign origin user=")


def test_a_sync_with_a_wrong_password_logs_no_secret_and_no_email(app, dovecot):
    wrong = "equivocada-Zq81"
    good = new_imap_user(dovecot, sample_messages()[:10])
    bad = new_imap_user(dovecot, sample_messages()[10:20])
    with app.app_context():
        user = User(email="ana@example.cr", password_hash="x")
        db.session.add(user)
        db.session.flush()
        imap_account(user.id, dovecot, good)
        imap_account(user.id, dovecot, bad, password=wrong)
        db.session.commit()
        token = control.start(user).token
    # As production runs it, and chattier: DEBUG would print IMAP traces if we let it.
    done = run_worker_process(app, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    with app.app_context():
        from expense_sync.models import SyncSession

        session = db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()
        assert session.status == "failed" and session.processed_emails > 0
    output = done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) > 5 and all(json.loads(line) for line in lines)
    assert any(json.loads(line).get("job_id") for line in lines)
    body = sample_messages()[0].decode(errors="replace").split("\n\n", 1)[1][:200].strip()
    for secret in (wrong, IMAP_PASSWORD, body.splitlines()[0]):
        assert secret not in output


def test_a_line_break_in_a_logged_value_cannot_forge_a_line(app, capsys):
    log = logging.getLogger("expense_sync.test")
    with app.app_context():
        log.warning("connecting to %s", "imap.example.cr\r\nERROR forged line\u2028x")
    text = capsys.readouterr().err
    [line] = [line for line in text.splitlines() if "connecting to" in line]
    assert "imap.example.cr\\r\\nERROR forged line\\u2028x" in line
    assert "forged line" not in text.replace(line, "")


def test_objects_and_numbers_in_a_log_call_keep_to_one_line(app, capsys):
    log = logging.getLogger("expense_sync.test")
    with app.app_context():
        log.warning("failed %d times: %s", 3, ValueError("host\r\nERROR forged"))
    [line] = [line for line in capsys.readouterr().err.splitlines() if "failed 3 times" in line]
    assert "host\\r\\nERROR forged" in line
