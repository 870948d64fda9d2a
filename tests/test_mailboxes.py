"""Mail sources against a real Dovecot, and the same contract on mbox files and Maildirs."""

import hashlib
import mailbox
import pickle
import socket
import ssl
import uuid
from pathlib import Path

import pytest
from helpers import APP_PASSWORD, BAC, SENDERS, email, settings
from servers import DovecotServer, free_port

from expense_sync.mailboxes import ImapSettings, MailboxError, Scan, check_connection, open_source

DAVIBANK = "Alertas@davibank.cr"


@pytest.fixture
def user(dovecot) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, APP_PASSWORD)
    return name


def failure(imap: ImapSettings) -> MailboxError:
    with pytest.raises(MailboxError) as raised:
        check_connection(imap)
    assert APP_PASSWORD not in str(raised.value)
    return raised.value


def test_check_connection_counts_all_mail(dovecot, user):
    assert check_connection(settings(dovecot, user)) == 0
    dovecot.append(user, [email(), email("amigo@example.cr")])
    assert check_connection(settings(dovecot, user)) == 2


def test_scan_filters_senders_then_only_newer(dovecot, user):
    dovecot.append(user, [email(BAC), email("amigo@example.cr"), email(f"DaviBank <{DAVIBANK}>")])
    with open_source("imap", imap=settings(dovecot, user)) as source:
        first = source.scan(None, 0, SENDERS)
        assert first.uids == [1, 3] and first.reset is False
        assert source.scan(None, 0, []).uids == [1, 2, 3]
        assert source.scan(None, 0, [BAC]).uids == [1]
    dovecot.append(user, [email(BAC), email("otro@example.cr")])
    with open_source("imap", imap=settings(dovecot, user)) as source:
        later = source.scan(first.uidvalidity, 3, SENDERS)
        assert later == Scan(first.uidvalidity, [4], reset=False)
        # "UID 6:*" matches the newest message on the server; it must not come back.
        assert source.scan(first.uidvalidity, 5, SENDERS).uids == []


def test_scan_a_folder_other_than_inbox(dovecot, user):
    dovecot.append(user, [email(), email()], folder="Bancos")
    with open_source("imap", imap=settings(dovecot, user, folder="Bancos")) as source:
        assert source.scan(None, 0, SENDERS).uids == [1, 2]


def test_fetch_returns_raw_messages_in_batches_without_marking_them_read(dovecot, user):
    messages = [email(subject=f"Compra {n}") for n in range(7)]
    dovecot.append(user, messages)
    dovecot.append(user, [email(subject="ya leído")], seen=True)
    with open_source("imap", imap=settings(dovecot, user)) as source:
        uids = source.scan(None, 0, SENDERS).uids
        fetched = list(source.fetch(uids, batch_size=3))
    assert [uid for uid, _ in fetched] == list(range(1, 9))
    assert [raw.replace(b"\r\n", b"\n") for _, raw in fetched[:7]] == messages
    assert dovecot.flags(user) == {n: () for n in range(1, 8)} | {8: (b"\\Seen",)}


def test_uidvalidity_change_means_full_rescan(dovecot, user):
    dovecot.append(user, [email(), email()])
    with open_source("imap", imap=settings(dovecot, user)) as source:
        before = source.scan(None, 0, SENDERS)
    new_validity = dovecot.reset_uidvalidity(user)
    with open_source("imap", imap=settings(dovecot, user)) as source:
        after = source.scan(before.uidvalidity, 2, SENDERS)
    assert after.reset is True
    assert after.uidvalidity == new_validity != before.uidvalidity
    assert after.uids == [1, 2]


def test_wrong_password_is_an_authentication_error(dovecot, user):
    error = failure(settings(dovecot, user, password="incorrecta"))
    assert (error.kind, error.transient) == ("authentication", False)
    assert "contraseña" in error.message and "incorrecta" not in error.message


def test_closed_port_is_a_permanent_network_error(dovecot, user):
    error = failure(settings(dovecot, user, port=free_port()))
    assert (error.kind, error.transient) == ("network", False)
    assert "No se pudo conectar a 127.0.0.1:" in error.message


def test_unknown_host_is_a_permanent_network_error(dovecot, user):
    try:
        socket.getaddrinfo("no-existe.invalid", 993)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            pytest.skip("this machine has no working DNS resolver")
    error = failure(settings(dovecot, user, host="no-existe.invalid"))
    assert (error.kind, error.transient) == ("network", False)
    assert "no-existe.invalid" in error.message


def test_silent_server_times_out_as_a_transient_network_error(dovecot, user):
    with socket.socket() as listener:  # accepts connections but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        error = failure(settings(dovecot, user, port=port, timeout=0.3))
    assert (error.kind, error.transient) == ("network", True)
    assert "no respondió en 0,3 segundos" in error.message


def test_unknown_folder_is_a_folder_error(dovecot, user):
    error = failure(settings(dovecot, user, folder="Viejos"))
    assert (error.kind, error.transient) == ("folder", False)
    # The server's own words stay, for support, after the Spanish message.
    assert error.message == (
        "La carpeta «Viejos» no existe en el buzón. "
        "(El servidor dijo: Mailbox doesn't exist: Viejos.)"
    )
    error = failure(settings(dovecot, user, folder="Bancos/Viejos"))  # "." separates levels
    assert error.kind == "folder"
    assert error.message == (
        "No se pudo abrir la carpeta «Bancos/Viejos»: "
        "Invalid mailbox name: Name must not have '/' characters."
    )


def test_connection_lost_mid_fetch_is_a_transient_network_error(dovecot, user):
    dovecot.append(user, [email() for _ in range(10)])
    with pytest.raises(MailboxError) as raised:
        with open_source("imap", imap=settings(dovecot, user)) as source:
            batches = source.fetch(source.scan(None, 0, SENDERS).uids, batch_size=3)
            assert next(batches)[0] == 1
            assert dovecot.kill_imap_processes() >= 1
            list(batches)
    assert (raised.value.kind, raised.value.transient) == ("network", True)
    # The next attempt, as the sync engine's retry makes it, starts cleanly.
    assert check_connection(settings(dovecot, user)) == 10


def test_tls_mode_on_a_plain_port_is_a_tls_error(dovecot, user):
    for security in ("ssl", "starttls"):  # plain Dovecot has no TLS and offers no STARTTLS
        error = failure(settings(dovecot, user, security=security))
        assert (error.kind, error.transient) == ("tls", False)


def test_errors_survive_pickling():
    error = pickle.loads(pickle.dumps(MailboxError("network", "Se perdió", transient=True)))
    assert (error.kind, error.message, error.transient) == ("network", "Se perdió", True)


@pytest.fixture
def tls_user(tls_dovecot) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    tls_dovecot.add_user(name, APP_PASSWORD)
    tls_dovecot.append(name, [email()])
    return name


def test_ssl_and_starttls_with_a_trusted_certificate(tls_dovecot, tls_user, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_dovecot.cert_path))  # read by OpenSSL per use
    for security, port in (("ssl", tls_dovecot.ssl_port), ("starttls", tls_dovecot.port)):
        imap = settings(tls_dovecot, tls_user, security=security, port=port)
        assert check_connection(imap) == 1


def test_untrusted_certificate_is_a_tls_error(tls_dovecot, tls_user):
    error = failure(settings(tls_dovecot, tls_user, security="ssl", port=tls_dovecot.ssl_port))
    assert (error.kind, error.transient) == ("tls", False)
    assert "certificado" in error.message


def der_fingerprint(server: DovecotServer) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(server.cert_path.read_text())).hexdigest()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_an_unknown_issuer_is_offered_to_trust_by_its_fingerprint(tls_dovecot, tls_user, security):
    port = tls_dovecot.ssl_port if security == "ssl" else tls_dovecot.port
    error = failure(settings(tls_dovecot, tls_user, security=security, port=port))
    assert error.kind == "tls" and "no es de una autoridad reconocida" in error.message
    assert error.fingerprint == der_fingerprint(tls_dovecot)


def test_a_pinned_certificate_is_the_only_one_accepted():
    # A server of its own: the test renews its certificate.
    with DovecotServer(tls=True) as server:
        server.add_user("pin", APP_PASSWORD)
        server.append("pin", [email()])
        pin = der_fingerprint(server)
        for security, port in (("ssl", server.ssl_port), ("starttls", server.port)):
            pinned = settings(server, "pin", security=security, port=port, tls_fingerprint=pin)
            assert check_connection(pinned) == 1
        server.renew_certificate()
        for security, port in (("ssl", server.ssl_port), ("starttls", server.port)):
            pinned = settings(server, "pin", security=security, port=port, tls_fingerprint=pin)
            error = failure(pinned)
            assert error.kind == "tls" and "cambió desde que usted confió en él" in error.message
            assert error.fingerprint == der_fingerprint(server) != pin


def test_a_pin_does_not_trust_a_certificate_the_system_trusts(tls_dovecot, tls_user, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_dovecot.cert_path))
    pinned = settings(
        tls_dovecot, tls_user, security="ssl", port=tls_dovecot.ssl_port, tls_fingerprint="ab" * 32
    )
    assert "cambió" in failure(pinned).message


# Local sources: the same contract over files that must never change.


def write_mbox(path, messages: list[bytes]) -> str:
    box = mailbox.mbox(path)
    for message in messages:
        box.add(message)
    box.close()
    return str(path)


def write_maildir(path, messages: list[bytes], start: int = 0) -> str:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for n, message in enumerate(messages, start):
        # Alternate read (cur/, flagged Seen) and unread (new/) mail, as a mail client leaves it.
        name = f"{1_700_000_000 + n}.M{n}P42.host" + (":2,S" if n % 2 else "")
        (path / ("cur" if n % 2 else "new") / name).write_bytes(message)
    return str(path)


def snapshot(path: str) -> dict[str, tuple[bytes, int]]:
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


@pytest.fixture(params=["mbox", "maildir"])
def local(request, tmp_path):
    """(kind, write) where write(messages) creates or grows the mailbox and returns its path."""
    kind, target, written = request.param, tmp_path / f"correo.{request.param}", []

    def write(messages: list[bytes]) -> str:
        written.extend(messages)
        if kind == "mbox":
            return write_mbox(target, messages)  # appends in place, as a mail client does
        return write_maildir(target, messages, start=len(written) - len(messages))

    return kind, write


def test_local_scan_filters_senders_then_only_newer(local):
    kind, write = local
    path = write(
        [email(BAC), email("amigo@example.cr"), email("=?utf-8?q?DaviBank?= <x@davibank.cr>")]
    )
    with open_source(kind, path=path) as source:
        first = source.scan(None, 0, SENDERS)
        assert (first.uids, first.reset) == ([1, 3], False)
        assert source.scan(None, 0, []).uids == [1, 2, 3]
        assert source.scan(None, 0, ["DAVIBANK"]).uids == [3]  # display name, decoded
    write([email(BAC)])
    with open_source(kind, path=path) as source:
        assert source.scan(first.uidvalidity, 3, SENDERS) == Scan(
            first.uidvalidity, [4], reset=False
        )


def test_local_fetch_returns_exact_bytes_and_changes_nothing(local):
    kind, write = local
    messages = [email(subject=f"Compra {n}") for n in range(5)]
    path = write(messages)
    before = snapshot(path)
    with open_source(kind, path=path) as source:
        fetched = list(source.fetch(source.scan(None, 0, SENDERS).uids, batch_size=2))
    assert fetched == list(enumerate(messages, 1))
    assert snapshot(path) == before


def test_local_uidvalidity_is_stable_and_shrinking_resets(local):
    kind, write = local
    path = write([email(), email(), email()])
    with open_source(kind, path=path) as source:
        validity = source.scan(None, 0, SENDERS).uidvalidity
    with open_source(kind, path=path) as source:
        assert source.scan(validity, 3, SENDERS) == Scan(validity, [], reset=False)
        # A checkpoint past the end: the mailbox lost messages, so positions moved.
        assert source.scan(validity, 7, SENDERS) == Scan(validity, [1, 2, 3], reset=True)
        assert source.scan(validity + 1, 3, SENDERS).reset is True


def test_mbox_replaced_by_a_new_export_is_rescanned(tmp_path):
    path = write_mbox(tmp_path / "takeout.mbox", [email(), email()])
    with open_source("mbox", path=path) as source:
        old = source.scan(None, 0, SENDERS)
    write_mbox(tmp_path / "download.mbox", [email(), email(), email()])
    (tmp_path / "download.mbox").replace(path)
    with open_source("mbox", path=path) as source:
        new = source.scan(old.uidvalidity, 2, SENDERS)
    assert new.reset is True and new.uids == [1, 2, 3]


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_missing_local_path_is_a_folder_error(kind, tmp_path):
    with pytest.raises(MailboxError) as raised:
        open_source(kind, path=str(tmp_path / "no-existe"))
    assert raised.value.kind == "folder" and "no-existe" in raised.value.message


def test_wrong_local_shapes_are_folder_errors(tmp_path):
    with pytest.raises(MailboxError, match="no un archivo mbox"):
        open_source("mbox", path=str(tmp_path))
    with pytest.raises(MailboxError, match="no es un Maildir"):
        open_source("maildir", path=str(tmp_path))


def test_maildir_orders_by_delivery_time_not_by_name(tmp_path):
    # Microseconds in Maildir names are not zero-padded: by name, M100000 sorts before M99999.
    path = write_maildir(tmp_path / "box", [])
    later, earlier = email(subject="después"), email(subject="antes")
    (tmp_path / "box" / "new" / "1700000000.M100000P1.host").write_bytes(later)
    (tmp_path / "box" / "new" / "1700000000.M99999P1.host").write_bytes(earlier)
    with open_source("maildir", path=path) as source:
        assert [raw for _, raw in source.fetch([1, 2])] == [earlier, later]
