"""A real TCP proxy in front of a real IMAP server that words or refuses replies like others do.

Dovecot stays the server that stores and serves the mail; the proxy only changes what the
client hears, line by line, so a test can make Dovecot sound like Gmail, Exchange, Cyrus or
Courier, or throttle, say BYE in the middle of a FETCH, or refuse a UTF-8 SEARCH:

    with ImapProxy(dovecot.port, answers=[Answer(rb"^UID FETCH", b"{tag} NO [LIMIT] ...")],
                   rewrites=[(rb"NO \\[NONEXISTENT\\].*", b"NO Mailbox does not exist")]) as proxy:
        ...  # connect to 127.0.0.1:proxy.port

Literals (message bodies, 8-bit search terms) pass through as they are and are never
rewritten or matched.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n$")


@dataclass
class Answer:
    """Answer the client's commands matching ``command`` (a regex on the text after the tag).

    ``reply`` is sent with ``{tag}`` replaced by the command's tag. By default the command
    never reaches the server; with ``after_literals`` it does, and the reply cuts into the
    server's response after that many literals (FETCHed messages) went through, and the
    connection closes. The first
    ``skip`` matching commands pass untouched; then ``times`` are answered (None: all).
    ``close`` drops the connection after the reply, as a server that says BYE does.
    """

    command: bytes
    reply: bytes
    skip: int = 0
    times: int | None = 1
    close: bool = False
    after_literals: int | None = None
    answered: int = 0
    _seen: int = 0

    def wants(self, command: bytes) -> bool:
        if not re.search(self.command, command, re.IGNORECASE):
            return False
        self._seen += 1
        if self._seen <= self.skip or (self.times is not None and self.answered >= self.times):
            return False
        self.answered += 1
        return True


class ImapProxy:
    """Proxy 127.0.0.1:``port`` to 127.0.0.1:``target_port``, answering and rewriting replies.

    ``rewrites`` are ``(pattern, replacement)`` pairs applied with ``re.sub`` to every line the
    server sends (the CRLF excluded). ``answers`` count commands over all connections, so a
    client that reconnects after an injected fault gets the real server.
    """

    def __init__(
        self,
        target_port: int,
        *,
        answers: Sequence[Answer] = (),
        rewrites: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.target_port = target_port
        self.answers = list(answers)
        self.rewrites = list(rewrites)
        self.commands: list[bytes] = []  # every command line seen, for assertions
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            _Connection(self, client, server).start()

    def answer_for(self, command: bytes) -> Answer | None:
        with self._lock:
            self.commands.append(command)
            return next((a for a in self.answers if a.wants(command)), None)

    def rewrite(self, line: bytes) -> bytes:
        for pattern, replacement in self.rewrites:
            line = re.sub(pattern, replacement, line)
        return line

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> ImapProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Connection:
    def __init__(self, proxy: ImapProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.send_lock = threading.Lock()  # both directions may write to the client
        self.cut: tuple[Answer, bytes] | None = None  # an answer waiting to cut a response
        self.literals = 0

    def start(self) -> None:
        threading.Thread(target=self._from_client, daemon=True).start()
        threading.Thread(target=self._from_server, daemon=True).start()

    def _to_client(self, data: bytes) -> None:
        with self.send_lock:
            self.client.sendall(data)

    def _from_client(self) -> None:
        reader = self.client.makefile("rb")
        starts_command, dropping = True, False
        try:
            while line := reader.readline():
                literal = _LITERAL.search(line)
                if starts_command:
                    tag, _, command = line.rstrip(b"\r\n").partition(b" ")
                    dropping = False
                    answer = self.proxy.answer_for(command)
                    if answer is not None and answer.after_literals is not None:
                        self.cut, self.literals = (answer, tag), 0
                    elif answer is not None:
                        self._to_client(answer.reply.replace(b"{tag}", tag))
                        if answer.close:
                            break
                        # A client that waits for "+" gives up on the command; one using
                        # LITERAL+ sends the rest anyway, which the server must not see.
                        dropping = bool(literal and literal[2])
                        if not dropping:
                            continue
                data = line + (reader.read(int(literal[1])) if literal else b"")
                if not dropping:
                    self.server.sendall(data)
                starts_command = literal is None
        except OSError:
            pass
        finally:
            self._shut()

    def _from_server(self) -> None:
        reader = self.server.makefile("rb")
        try:
            while line := reader.readline():
                literal = _LITERAL.search(line)
                head = line[: literal.start()] if literal else line.rstrip(b"\r\n")
                tail = line[literal.start() :] if literal else line[len(head) :]
                data = self.proxy.rewrite(head) + tail
                if literal:
                    data += reader.read(int(literal[1]))
                self._to_client(data)
                if self.cut is None:
                    continue
                answer, tag = self.cut
                self.literals += bool(literal)
                if not literal and self.literals >= answer.after_literals:
                    # At a line's end, so the client has read whole responses before it.
                    self._to_client(answer.reply.replace(b"{tag}", tag))
                    break
        except OSError:
            pass
        finally:
            self._shut()

    def _shut(self) -> None:
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
