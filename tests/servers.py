"""Real Redis and Dovecot IMAP servers for tests and benchmarks, each on a free local port.

Both run in the foreground as children of the test process, each in a process group of its
own: stopping one signals that group and waits, and a server dies with the thread that
started it (``_die_with_parent``), so start servers from the main thread or a thread that
outlives them.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from imapclient import IMAPClient


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel sends SIGTERM to the server if the test
    # process dies without cleaning up (killed by a timeout, ^C twice, a crash).
    if sys.platform == "linux":
        prctl_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(prctl_set_pdeathsig, signal.SIGTERM)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so _stop can signal the server with all its children at once.
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _wait_for(
    check: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log.read_text(errors='replace')}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not start in 15 s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    # Signalling only Dovecot's master makes it wait a second for its children; signalling
    # the whole group stops everything in milliseconds.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "redis-server is not installed (Debian: apt-get install redis-server;"
            " `make run` and `make test` install it as root)"
        )
    return found


class RedisServer:
    """A throwaway redis-server without persistence on a free port; `replica_of`: the port
    of the primary it replicates."""

    def __init__(self, replica_of: int | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._replica_of = replica_of
        self.start()

    def start(self) -> None:
        args = [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self._dir)]
        if self._replica_of:
            args += ["--replicaof", "127.0.0.1", str(self._replica_of)]
        log = self._dir / "redis.log"
        self._process = _spawn(args, log)

        def pongs() -> bool:
            # A raw socket: redis-py would retry with backoff and hide how fast the server is.
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        _wait_for(pongs, "redis-server", self._process, log)

    def stop(self) -> None:
        _stop(self._process)

    def restart(self) -> None:
        """Stop and start again on the same port, empty, like a Redis that crashed."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SENTINEL_CONF = """\
port {port}
bind 127.0.0.1
dir {dir}
sentinel monitor {service} 127.0.0.1 {primary} {quorum}
sentinel down-after-milliseconds {service} 1000
sentinel failover-timeout {service} 5000
sentinel parallel-syncs {service} 1
"""


class SentinelServer:
    """Debian's redis-sentinel watching the primary on `primary` as `service`."""

    def __init__(self, primary: int, service: str = "mymaster", quorum: int = 2) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="sentinel-test-"))
        config = self._dir / "sentinel.conf"  # Sentinel rewrites it: its own copy
        config.write_text(
            SENTINEL_CONF.format(
                port=self.port, dir=self._dir, service=service, primary=primary, quorum=quorum
            )
        )
        log = self._dir / "sentinel.log"
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        if not Path(binary).exists():
            raise RuntimeError("redis-sentinel is not installed (Debian: redis-sentinel)")
        self._process: subprocess.Popen[bytes] | None = _spawn([binary, str(config)], log)

        def pongs() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        _wait_for(pongs, "redis-sentinel", self._process, log)

    def close(self) -> None:
        _stop(self._process)
        shutil.rmtree(self._dir, ignore_errors=True)


HAPROXY_CONF = """\
global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    retries 3
    option redispatch
frontend web
    bind 127.0.0.1:{port}
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


class HAProxy:
    """Debian's HAProxy in front of web processes on `backends` (ports): round robin,
    health-checked every 200 ms, a refused connection sent to the other, and nothing
    buffered (HAProxy streams responses as they come, which event streams need)."""

    def __init__(self, backends: list[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="haproxy-test-"))
        servers = "\n".join(
            f"    server web{i} 127.0.0.1:{port} check inter 200ms fall 1 rise 2"
            for i, port in enumerate(backends)
        )
        config = self._dir / "haproxy.cfg"
        config.write_text(HAPROXY_CONF.format(port=self.port, servers=servers))
        log = self._dir / "haproxy.log"
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("haproxy is not installed (Debian: haproxy)")
        self._process: subprocess.Popen[bytes] | None = _spawn(
            [binary, "-db", "-f", str(config)], log
        )

        def listens() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        _wait_for(listens, "haproxy", self._process, log)

    def close(self) -> None:
        _stop(self._process)
        shutil.rmtree(self._dir, ignore_errors=True)


DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login{mechanisms}
# Tests log in with wrong passwords on purpose. Without these two, each failure delays the
# reply by 2 s and every later login from 127.0.0.1 by 2, 4, 8 then 15 s (anvil's penalty).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 1000
{ssl}
# One passwd-file per user: Dovecot re-reads a changed passwd-file at most once a second,
# so with a single shared file a user added right after a login stays unknown for a while.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
{oauth2}userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ssl_port}
  }}
}}
"""


# Tokens are checked by POSTing them to the test's authorization server (RFC 7662), which
# answers whose they are; the user must also exist in the passwd-file userdb.
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
"""
OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


def _self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for localhost and 127.0.0.1 that clients can trust via SSL_CERT_FILE."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    options = "-x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30"
    names = "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
    command = f"openssl req {options} {names} -keyout {key} -out {cert}"
    subprocess.run(command.split(), check=True, capture_output=True)
    return cert, key


class DovecotServer:
    """Debian's Dovecot with its own config, users and Maildirs in a temp dir.

    Plain IMAP on ``port``; with ``tls=True`` also implicit TLS on ``ssl_port`` and STARTTLS on
    ``port``, using a self-signed certificate at ``cert_path`` (``renew_certificate`` puts a
    new one in its place). With ``oauth2`` (an RFC 7662 introspection URL, credentials in
    it) logins with XOAUTH2 or OAUTHBEARER are checked there; passwords work as before.
    """

    host = "127.0.0.1"

    def __init__(self, tls: bool = False, oauth2: str | None = None) -> None:
        if shutil.which("dovecot") is None:
            raise RuntimeError("dovecot is not installed: apt-get install -y dovecot-imapd")
        # Mail processes run as the dovecot user, which must be able to traverse the root.
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.ssl_port = free_port() if tls else 0
        self.cert_path: Path | None = None
        self._mail_user = pwd.getpwnam("dovecot")
        self._passwords: dict[str, str] = {}
        self._config = self.root / "dovecot.conf"
        self._oauth2 = oauth2
        self._write_config(tls)
        (self.root / "users").mkdir()
        (self.root / "home").mkdir(mode=0o755)
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def _write_config(self, tls: bool) -> None:
        ssl = "ssl = no"
        if tls:
            self.cert_path, key_path = _self_signed_cert(self.root)
            ssl = f"ssl = yes\nssl_cert = <{self.cert_path}\nssl_key = <{key_path}"
        mechanisms, oauth2 = "", ""
        if self._oauth2:
            mechanisms, oauth2 = " xoauth2 oauthbearer", OAUTH2_PASSDB.format(root=self.root)
            (self.root / "oauth2.conf.ext").write_text(OAUTH2_CONF.format(url=self._oauth2))
        self._config.write_text(
            DOVECOT_CONF.format(
                root=self.root,
                port=self.port,
                ssl_port=self.ssl_port,
                ssl=ssl,
                mechanisms=mechanisms,
                oauth2=oauth2,
            )
        )

    def renew_certificate(self) -> None:
        """Restart with a new self-signed certificate, as a server whose certificate changed."""
        if self.cert_path is None:
            raise RuntimeError("renew_certificate needs DovecotServer(tls=True)")
        self.stop()
        _self_signed_cert(self.root)
        self.start()

    def start(self) -> None:
        log = self.root / "dovecot.log"
        self._process = _spawn(["dovecot", "-F", "-c", str(self._config)], log)

        def greets() -> bool:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"* OK")

        _wait_for(greets, "dovecot", self._process, log)

    def stop(self) -> None:
        _stop(self._process)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_user(self, name: str, password: str) -> None:
        """Create a mail user with an empty INBOX; works while the server runs."""
        if name in self._passwords:
            raise ValueError(f"user {name!r} exists; tests sharing a server need unique names")
        home = self.root / "home" / name
        home.mkdir(mode=0o700)
        uid, gid = self._mail_user.pw_uid, self._mail_user.pw_gid
        os.chown(home, uid, gid)
        self._passwords[name] = password
        entry = f"{name}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n"
        (self.root / "users" / name).write_text(entry)

    def connect(self, user: str) -> IMAPClient:
        """A logged-in plain-IMAP client for ``user``; close it with ``logout()`` or ``with``."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        client.login(user, self._passwords[user])
        return client

    def append(
        self, user: str, messages: Iterable[bytes], folder: str = "INBOX", seen: bool = False
    ) -> list[int]:
        """Append messages through IMAP, creating the folder if needed; return their UIDs.

        The UIDs are read from UIDNEXT before and after, so nothing else may append to the
        folder meanwhile.
        """
        flags = [b"\\Seen"] if seen else []
        with self.connect(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            first = client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"]
            # MULTIAPPEND with LITERAL+ sends a batch in one round trip and Dovecot saves it
            # in one transaction: 10,000 messages take ~4 s here, against ~35 s one by one.
            for batch in _batches(messages, 500):
                client.multiappend(folder, [{"msg": m, "flags": flags} for m in batch])
            last = client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"]
        return list(range(first, last))

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """Every message's flags by UID, read without changing them."""
        with self.connect(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            response = client.fetch(uids, ["FLAGS"])
        # \\Recent only says which session saw the message first; it is never stored.
        return {
            uid: tuple(flag for flag in data[b"FLAGS"] if flag != b"\\Recent")
            for uid, data in response.items()
        }

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY, as a client sees it."""
        with self.connect(user) as client:
            return client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"]

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY, keeping its messages; returns the new value."""
        new = self.uidvalidity(user, folder) + 1
        command = f"doveadm -c {self._config} mailbox update -u {user} --uid-validity {new}"
        subprocess.run([*command.split(), folder], check=True, capture_output=True)
        return new

    def kill_imap_processes(self) -> int:
        """SIGKILL every logged-in session's imap process; the listener stays up.

        Clients see their connection drop mid-command, as when a server crashes or a NAT
        forgets the connection. Returns how many sessions were killed.
        """
        if self._process is None:
            return 0
        killed = 0
        for pid in children(self._process.pid):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "imap":
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            except (FileNotFoundError, ProcessLookupError):
                pass  # the session ended by itself meanwhile
        return killed


def gunicorn_command(port: int, *options: str, app: str = "wsgi:app") -> list[str]:
    """The web process as the Procfile runs it (gunicorn.conf.py: gevent), one worker on
    127.0.0.1:port, no access log; `options` go before the app."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "/dev/null",
        *options,
        app,
    ]


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    user_agent: str = "expense-sync-tests",
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to a server of ours on 127.0.0.1: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"User-Agent": user_agent, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def log_in_form(port: int, email: str, password: str, user_agent: str) -> str:
    """Log in through the real /login form (CSRF token from its meta tag); returns the Cookie
    header that later requests send, with the same User-Agent (Flask-Login's "strong")."""
    cookies: dict[str, str] = {}

    def keep(headers) -> None:
        for value in headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]

    status, headers, page = http_request(port, "GET", "/login", user_agent=user_agent)
    keep(headers)
    match = re.search(rb'<meta name="csrf-token" content="([^"]+)"', page)
    if status != 200 or not match:
        raise RuntimeError(f"no login form (HTTP {status})")
    form = urllib.parse.urlencode(
        {"csrf_token": match.group(1).decode(), "email": email, "password": password}
    ).encode()
    status, headers, _ = http_request(
        port,
        "POST",
        "/login",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        },
        user_agent=user_agent,
    )
    keep(headers)
    if status != 302 or "/login" in (headers.get("Location") or ""):
        raise RuntimeError(f"login failed (HTTP {status})")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def children(parent: int) -> Iterator[int]:
    """The pids whose parent is `parent` (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name in parentheses may contain spaces; fields after it are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent:
            yield int(entry.name)


def kill_tree(pid: int) -> None:
    """SIGKILL a worker and everything it forked (its work-horse has its own group)."""
    pids = [pid]
    for parent in pids:
        pids.extend(children(parent))
    for target in pids:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for target in pids:
        try:
            os.waitpid(target, 0)
        except ChildProcessError:
            pass


def _batches(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class CuttingProxy:
    """A TCP proxy that cuts a connection once the server has sent `cut_after` bytes on it.

    A real network fault between a client and a real server: the client sees its
    connection drop mid-response. Only the first such connection is cut; short
    connections before it and every connection after it pass through untouched.
    """

    def __init__(self, target_port: int, cut_after: int) -> None:
        import threading

        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import threading

        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            limit = self.cut_after if self.cuts == 0 else None
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, limit), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    self.cuts += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._stopped = True
        self._listener.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
