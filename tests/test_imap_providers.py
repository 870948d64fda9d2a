"""Real providers' behaviour, played by a real Dovecot behind a proxy that words replies like them.

Throttling and BYE are retried (after the delay the server asks for) without losing or
repeating mail; a security mode that does not fit the port fails in seconds with the mode
to use; each server's wording of a missing folder, a refused login or a quota is told in
Spanish with its own words kept; a refused UTF-8 SEARCH falls back to matching here.
"""

import json
import socket
import threading
import time
import uuid

import pytest
from helpers import APP_PASSWORD, BAC, SENDERS, email, settings
from imap_proxy import Answer, ImapProxy

from expense_sync.mailboxes import MailboxError, check_connection, open_source


@pytest.fixture
def dovecot(tls_dovecot):
    """Every test here may need the TLS ports: the session's TLS Dovecot."""
    return tls_dovecot


@pytest.fixture
def user(dovecot) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, APP_PASSWORD)
    return name


def through(proxy: ImapProxy, dovecot, user, **overrides):
    return settings(dovecot, user, port=proxy.port, **overrides)


def failure(imap, fetch: bool = False) -> MailboxError:
    with pytest.raises(MailboxError) as raised:
        with open_source("imap", imap=imap) as source:
            if fetch:
                list(source.fetch(source.scan(None, 0, SENDERS).uids, batch_size=2))
    assert APP_PASSWORD not in raised.value.message
    return raised.value


# 1. Throttling and transient refusals.

THROTTLING = {
    "limit": (rb"^UID FETCH", b"{tag} NO [LIMIT] Too many commands, slow down\r\n"),
    "gmail connections": (
        rb"^LOGIN",
        b"{tag} NO [ALERT] Too many simultaneous connections. (Failure)\r\n",
    ),
    "exchange unavailable": (rb"^LOGIN", b"{tag} NO Server Unavailable. 15\r\n"),
    "exchange backoff": (
        rb"^UID FETCH",
        b"{tag} BAD Request is throttled. Suggested Backoff Time: 2500 milliseconds\r\n",
    ),
    "unavailable": (rb"^EXAMINE", b"{tag} NO [UNAVAILABLE] Temporary failure, try later\r\n"),
    "inuse": (rb"^EXAMINE", b"{tag} NO [INUSE] Mailbox is locked by another process\r\n"),
}


@pytest.mark.parametrize("case", THROTTLING, ids=list(THROTTLING))
def test_throttling_replies_are_transient_server_errors(dovecot, user, case):
    dovecot.append(user, [email() for _ in range(3)])
    command, reply = THROTTLING[case]
    with ImapProxy(dovecot.port, answers=[Answer(command, reply)]) as proxy:
        error = failure(through(proxy, dovecot, user), fetch=True)
    assert (error.kind, error.transient) == ("server", True)
    assert error.message.startswith("127.0.0.1 pidió esperar antes de seguir")
    assert "(El servidor dijo: " in error.message
    assert error.retry_after == (2.5 if case == "exchange backoff" else None)


def test_bye_in_the_middle_of_a_fetch_is_transient(dovecot, user):
    dovecot.append(user, [email() for _ in range(6)])
    bye = Answer(
        rb"^UID FETCH", b"* BYE [UNAVAILABLE] Server Unavailable. 15\r\n", after_literals=1
    )
    with ImapProxy(dovecot.port, answers=[bye]) as proxy:
        error = failure(through(proxy, dovecot, user), fetch=True)
        assert bye.answered == 1
        assert check_connection(through(proxy, dovecot, user)) == 6  # the next try is clean
    assert (error.kind, error.transient) == ("server", True)
    assert "Server Unavailable. 15" in error.message


# 2. A security mode that does not fit the port.


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_plain_modes_against_an_implicit_tls_port_fail_fast_with_the_mode(dovecot, user, security):
    began = time.monotonic()
    error = failure(settings(dovecot, user, security=security, port=dovecot.ssl_port, timeout=30.0))
    assert time.monotonic() - began < 5
    assert (error.kind, error.transient) == ("tls", False)
    assert error.message == (
        f"El puerto {dovecot.ssl_port} espera SSL/TLS: elija «SSL/TLS» en Seguridad."
    )


def test_ssl_against_a_plain_port_fails_fast_with_the_mode(dovecot, user, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert_path))  # trusted: only the mode is wrong
    began = time.monotonic()
    error = failure(settings(dovecot, user, security="ssl", timeout=30.0))
    assert time.monotonic() - began < 5
    assert (error.kind, error.transient) == ("tls", False)
    assert error.message == (
        f"127.0.0.1:{dovecot.port} respondió sin cifrado: elija «STARTTLS» "
        "en Seguridad, o «SSL/TLS» con el puerto 993."
    )


def test_a_plain_server_slow_to_greet_still_connects(dovecot, user):
    """Silence is only a hint: a plain server that greets late is waited for."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def front() -> None:
            # The first connection stays silent until the client gives up on it and probes
            # for TLS (the second, refused); the third reaches Dovecot, which greets.
            silent, _ = listener.accept()
            probe, _ = listener.accept()
            probe.close()
            third, _ = listener.accept()
            silent.close()
            server = socket.create_connection((dovecot.host, dovecot.port))
            for source, sink in ((third, server), (server, third)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

        threading.Thread(target=front, daemon=True).start()
        assert check_connection(settings(dovecot, user, port=listener.getsockname()[1])) == 0


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        sink.close()


# 3. Each server's wording, in Spanish, with its own words kept.

MISSING_FOLDER = {
    "cyrus": b"NO Mailbox does not exist",
    "courier": b"NO Unable to open this mailbox.",
    "courier subscribed": b"NO Mailbox does not exist, or must be subscribed to.",
    "gmail": b"NO [NONEXISTENT] Unknown Mailbox: Viejos (now in authenticated state) (Failure)",
    "exchange": b"NO The specified folder could not be found in the store.",
}


@pytest.mark.parametrize("server", MISSING_FOLDER, ids=list(MISSING_FOLDER))
def test_missing_folder_in_each_servers_words(dovecot, user, server):
    worded = MISSING_FOLDER[server]
    rewrite = (rb"NO Mailbox doesn't exist: .*", worded)  # Dovecot's words
    with ImapProxy(dovecot.port, rewrites=[rewrite]) as proxy:
        error = failure(through(proxy, dovecot, user, folder="Viejos"))
    assert (error.kind, error.transient) == ("folder", False)
    said = worded.decode().removeprefix("NO ").removeprefix("[NONEXISTENT] ")
    assert error.message == f"La carpeta «Viejos» no existe en el buzón. (El servidor dijo: {said})"


WRONG_LOGIN = {
    "cyrus": b"NO Login failed: authentication failure",
    "courier": b"NO Login failed.",
    "gmail": b"NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
    "exchange": b"NO LOGIN failed.",
}


@pytest.mark.parametrize("server", WRONG_LOGIN, ids=list(WRONG_LOGIN))
def test_wrong_password_in_each_servers_words(dovecot, user, server):
    rewrite = (rb"NO \[AUTHENTICATIONFAILED\] Authentication failed\.", WRONG_LOGIN[server])
    with ImapProxy(dovecot.port, rewrites=[rewrite]) as proxy:
        error = failure(through(proxy, dovecot, user, password="equivocada"))
    assert (error.kind, error.transient) == ("authentication", False)
    assert error.message.startswith("Usuario o contraseña incorrectos.")
    assert "(El servidor dijo: " in error.message and "equivocada" not in error.message


LOGIN_REFUSALS = {
    "gmail web login": (
        b"NO [ALERT] Please log in via your web browser: "
        b"https://support.google.com/mail/accounts/answer/78754 (Failure)",
        "bloqueó el inicio de sesión por seguridad",
    ),
    "gmail app password": (
        b"NO [ALERT] Application-specific password required: "
        b"https://support.google.com/accounts/answer/185833 (Failure)",
        "exige una contraseña de aplicación",
    ),
}


@pytest.mark.parametrize("case", LOGIN_REFUSALS, ids=list(LOGIN_REFUSALS))
def test_logins_refused_for_a_reason_say_the_reason(dovecot, user, case):
    worded, says = LOGIN_REFUSALS[case]
    refusal = Answer(rb"^LOGIN", b"{tag} " + worded + b"\r\n")
    with ImapProxy(dovecot.port, answers=[refusal]) as proxy:
        error = failure(through(proxy, dovecot, user))
    assert (error.kind, error.transient) == ("authentication", False)
    assert says in error.message and "support.google.com" in error.message


def test_exchange_authenticated_but_not_connected_is_a_login_problem(dovecot, user):
    reply = b"{tag} BAD User is authenticated but not connected.\r\n"
    with ImapProxy(dovecot.port, answers=[Answer(rb"^EXAMINE", reply)]) as proxy:
        error = failure(through(proxy, dovecot, user))
    assert (error.kind, error.transient) == ("authentication", False)
    assert "revise la contraseña y que el acceso IMAP esté activado" in error.message


@pytest.mark.parametrize(
    "reply",
    [
        b"{tag} NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)\r\n",
        b"{tag} NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n",
    ],
    ids=["gmail", "dovecot"],
)
def test_over_quota_is_a_permanent_server_error_in_spanish(dovecot, user, reply):
    dovecot.append(user, [email()])
    with ImapProxy(dovecot.port, answers=[Answer(rb"^UID FETCH", reply)]) as proxy:
        error = failure(through(proxy, dovecot, user), fetch=True)
    assert (error.kind, error.transient) == ("server", False)
    assert "limitó el acceso a este buzón por exceso de uso" in error.message
    assert "(El servidor dijo: " in error.message


# 4. A refused UTF-8 SEARCH.

OWN = "josé@ejemplo.cr"


def from_raw(sender: str, subject: str) -> bytes:
    # A raw UTF-8 header, as mail clients that support SMTPUTF8 send it.
    return (
        f"From: {sender}\r\nTo: {OWN}\r\nSubject: {subject}\r\n"
        "Message-ID: <" + uuid.uuid4().hex + "@ejemplo.cr>\r\n\r\nMonto: 1.00\r\n"
    ).encode()


REFUSALS = {
    "badcharset": b"{tag} NO [BADCHARSET (US-ASCII)] The specified charset is not supported.\r\n",
    "exchange bad": b"{tag} BAD Command Argument Error. 11\r\n",
}


@pytest.mark.parametrize("literal_plus", [True, False], ids=["literal+", "sync literal"])
@pytest.mark.parametrize("refusal", REFUSALS, ids=list(REFUSALS))
def test_a_refused_utf8_search_falls_back_to_matching_senders_here(
    dovecot, user, refusal, literal_plus
):
    dovecot.append(
        user,
        [
            email(BAC),
            from_raw(f"José <{OWN}>", "Reenviado: compra"),
            email("amigo@example.cr"),
            from_raw("otro@ejemplo.cr", "nada"),
            email("=?utf-8?q?Jos=C3=A9?= <jose@ejemplo.cr>"),
            from_raw(OWN, "Reenviado: retiro"),
            email(BAC),
        ],
    )
    senders = [*SENDERS, OWN]
    with open_source("imap", imap=settings(dovecot, user)) as source:
        validity = source.uidvalidity
        direct = source.scan(None, 0, senders).uids, source.scan(validity, 3, senders).uids
    assert direct == ([1, 2, 6, 7], [6, 7])
    refuse = Answer(rb"SEARCH CHARSET", REFUSALS[refusal], times=None)
    rewrites = [] if literal_plus else [(rb" LITERAL\+", b"")]
    with ImapProxy(dovecot.port, answers=[refuse], rewrites=rewrites) as proxy:
        with open_source("imap", imap=through(proxy, dovecot, user)) as source:
            fallback = (source.scan(None, 0, senders).uids, source.scan(validity, 3, senders).uids)
            assert source.scan(None, 0, SENDERS).uids == [1, 7]  # ASCII: no CHARSET needed
    assert refuse.answered == 2
    assert fallback == direct
    assert dovecot.flags(user) == {uid: () for uid in range(1, 8)}  # nothing marked read


# The sync engine around it: committed batches kept, the current one fetched again.


@pytest.fixture
def sync_user(app):
    from expense_sync.auth import create_user
    from expense_sync.extensions import db

    with app.app_context():
        created = create_user(f"{uuid.uuid4().hex[:8]}@example.cr", "x" * 12)
        db.session.commit()
        return created.id


def bank_mail(dovecot, count: int, to_address: str) -> tuple[str, set]:
    from expense_sync.demo import generate_notifications

    generated = list(generate_notifications(count, seed=7, to_address=to_address))
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, APP_PASSWORD)
    dovecot.append(name, [g.raw for g in generated])
    expected = {
        (e["bank"], e["reference"], e["authorization"])
        if e["reference"]
        else (e["bank"], e["kind"], e["amount"], e["currency"], e["occurred_at"])
        for e in (g.expected for g in generated)
        if e["status"] == "transaction"
    }
    return name, expected


def synced_through(app, dovecot, sync_user, proxy, mailbox, address):
    from test_sync import _user, imap_account, load, run_worker

    from expense_sync.engine import senders_for
    from expense_sync.extensions import db
    from expense_sync.models import Expense
    from expense_sync.sync import control

    with app.app_context():
        account = imap_account(sync_user, dovecot, mailbox, password=APP_PASSWORD, port=proxy.port)
        account.address = address
        db.session.commit()
        with open_source("imap", imap=settings(dovecot, mailbox)) as source:
            owed = len(source.scan(None, 0, senders_for(account)).uids)
        token = control.start(_user(sync_user)).token
    run_worker(app)
    with app.app_context():
        session = load(token)
        stored = db.session.scalar(
            db.select(db.func.count()).select_from(Expense).filter_by(user_id=sync_user)
        )
        return session, owed, stored, token


def retries_told(redis_client, token) -> list[str]:
    events = [
        json.loads(fields[b"data"]) for _, fields in redis_client.xrange(f"es:sync:{token}:events")
    ]
    return [event["message"] for event in events if "Reintento" in (event.get("message") or "")]


def test_bye_mid_fetch_of_a_sync_loses_nothing_and_stores_nothing_twice(
    app, dovecot, sync_user, redis_client
):
    mailbox, expected = bank_mail(dovecot, 520, "cliente@example.cr")
    # The second batch of 200 is cut after 50 messages: the first stays committed.
    bye = Answer(
        rb"^UID FETCH", b"* BYE [UNAVAILABLE] Server Unavailable. 15\r\n", skip=1, after_literals=50
    )
    with ImapProxy(dovecot.port, answers=[bye]) as proxy:
        session, owed, stored, token = synced_through(
            app, dovecot, sync_user, proxy, mailbox, "cliente@example.cr"
        )
        fetches = [c for c in proxy.commands if c.startswith(b"UID FETCH")]
    assert bye.answered == 1
    assert session.status == "completed", session.error_message
    assert session.processed_emails == session.total_emails == owed > 400
    assert stored == len(expected)
    assert len(fetches) == 4  # batch 1, batch 2 cut, then batches 2 and 3 again from the checkpoint
    told = retries_told(redis_client, token)
    assert len(told) == 1 and "pidió esperar" in told[0] and "Reintento 1 de 3 en 1 s." in told[0]


def test_a_sync_waits_the_backoff_exchange_suggests(app, dovecot, sync_user, redis_client):
    mailbox, expected = bank_mail(dovecot, 260, "cliente@example.cr")
    throttled = Answer(
        rb"^UID FETCH",
        b"{tag} NO Request is throttled. Suggested Backoff Time: 2200 milliseconds\r\n",
        skip=1,
    )
    with ImapProxy(dovecot.port, answers=[throttled]) as proxy:
        session, owed, stored, token = synced_through(
            app, dovecot, sync_user, proxy, mailbox, "cliente@example.cr"
        )
    assert session.status == "completed", session.error_message
    assert session.processed_emails == session.total_emails == owed
    assert stored == len(expected)
    told = retries_told(redis_client, token)
    assert len(told) == 1 and told[0].endswith("Reintento 1 de 3 en 3 s.")  # not the policy's 1 s


def test_a_sync_with_a_non_ascii_address_survives_a_refused_utf8_search(app, dovecot, sync_user):
    mailbox, expected = bank_mail(dovecot, 30, OWN)
    refuse = Answer(rb"SEARCH CHARSET", REFUSALS["badcharset"], times=None)
    with ImapProxy(dovecot.port, answers=[refuse]) as proxy:
        session, owed, stored, _ = synced_through(app, dovecot, sync_user, proxy, mailbox, OWN)
    assert refuse.answered >= 1
    assert session.status == "completed", session.error_message
    assert session.processed_emails == owed > 0 and stored == len(expected)
