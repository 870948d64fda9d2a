"""The test servers themselves: a real Redis and a real Dovecot, each on a free port."""

import socket
import ssl
import uuid

import pytest
import redis
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from servers import DovecotServer, RedisServer, free_port


def message(number: int, sender: str = "alerta@baccredomatic.com") -> bytes:
    return f"From: {sender}\r\nSubject: Compra {number}\r\n\r\nMonto: {number}.00\r\n".encode()


def new_user(dovecot: DovecotServer, password: str = "secreto") -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, password)
    return name


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_redis_answers_on_its_own_port(redis_server):
    assert redis_server.port != 6379
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("key", "value")
    assert client.get("key") == b"value"


def test_redis_restart_keeps_port_and_starts_empty(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.set("key", "value")
    port = redis_server.port
    redis_server.restart()
    assert redis_server.port == port
    assert client.ping()  # redis-py reconnects to the same URL
    assert client.get("key") is None  # no persistence: a restart loses everything


def test_dovecot_login(dovecot):
    user = new_user(dovecot)
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=5) as client:
        client.login(user, "secreto")
        assert {b"CONDSTORE", b"QRESYNC", b"IDLE", b"UIDPLUS"} <= set(client.capabilities())
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=5) as client:
        with pytest.raises(LoginError):
            client.login(user, "incorrecta")


def test_users_are_usable_at_once_and_unique(dovecot):
    for _ in range(3):  # right after one another, within the same second
        user = new_user(dovecot)
        with dovecot.connect(user) as client:
            assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    with pytest.raises(ValueError):
        dovecot.add_user(user, "otra")


def test_append_returns_uids_in_order_across_batches(dovecot):
    user = new_user(dovecot)
    uids = dovecot.append(user, (message(n) for n in range(1, 1201)))
    assert uids == list(range(1, 1201))
    with dovecot.connect(user) as client:
        client.select_folder("INBOX", readonly=True)
        subject = client.fetch([1200], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[1200]
        assert b"Compra 1200" in subject[b"BODY[HEADER.FIELDS (SUBJECT)]"]
    assert dovecot.append(user, [message(1201)]) == [1201]


def test_append_seen_and_to_other_folder(dovecot):
    user = new_user(dovecot)
    dovecot.append(user, [message(1)], seen=True)
    dovecot.append(user, [message(2)], folder="Bancos")
    assert dovecot.flags(user) == {1: (b"\\Seen",)}
    assert dovecot.flags(user, folder="Bancos") == {1: ()}


def test_reset_uidvalidity_keeps_messages(dovecot):
    user = new_user(dovecot)
    dovecot.append(user, [message(1), message(2)])
    before = dovecot.uidvalidity(user)
    after = dovecot.reset_uidvalidity(user)
    assert after != before
    assert dovecot.uidvalidity(user) == after
    assert len(dovecot.flags(user)) == 2


def test_kill_imap_processes_drops_sessions_but_keeps_listening(dovecot):
    user = new_user(dovecot)
    dovecot.append(user, [message(1)])
    client = dovecot.connect(user)
    client.select_folder("INBOX", readonly=True)
    assert dovecot.kill_imap_processes() >= 1
    with pytest.raises((IMAPClient.AbortError, OSError)):
        client.fetch([1], ["BODY.PEEK[]"])
    client.shutdown()
    with dovecot.connect(user) as again:
        assert again.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1


def test_tls_server_offers_implicit_tls_and_starttls(tls_dovecot):
    server = tls_dovecot
    user = new_user(server)
    trusted = ssl.create_default_context(cafile=server.cert_path)
    with IMAPClient("localhost", server.ssl_port, ssl_context=trusted, timeout=5) as client:
        client.login(user, "secreto")
    with IMAPClient("localhost", server.port, ssl=False, timeout=5) as client:
        client.starttls(trusted)
        client.login(user, "secreto")


def test_imap_proxy_rewrites_replies_but_never_the_mail_it_carries(dovecot):
    from imap_proxy import Answer, ImapProxy

    user = new_user(dovecot)
    body = message(1) + b"NO Mailbox doesn't exist: INBOX\r\n"
    dovecot.append(user, [body])
    rewrite = (rb"NO Mailbox doesn't exist: .*", b"NO Mailbox does not exist")
    refuse = Answer(rb"^UID SEARCH", b"{tag} NO [LIMIT] slow down\r\n", skip=1)
    with ImapProxy(dovecot.port, answers=[refuse], rewrites=[rewrite]) as proxy:
        with IMAPClient(dovecot.host, proxy.port, ssl=False, timeout=5) as client:
            client.login(user, "secreto")
            with pytest.raises(IMAPClient.Error, match="Mailbox does not exist$"):
                client.select_folder("Viejos", readonly=True)
            client.select_folder("INBOX", readonly=True)
            assert client.search("ALL") == [1]
            with pytest.raises(IMAPClient.Error, match=r"\[LIMIT\] slow down"):
                client.search("ALL")
            fetched = client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
    assert fetched == body and refuse.answered == 1
