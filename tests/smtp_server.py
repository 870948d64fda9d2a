"""A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""

import email
import email.policy
import logging
import queue
import re

from aiosmtpd.controller import Controller
from servers import free_port


class SmtpServer:
    """Messages arrive in `inbox`; `link(to)` waits for the next one to `to` and returns
    the first link in its text."""

    def __init__(self):
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
        self.inbox: queue.Queue = queue.Queue()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.inbox.put((envelope.rcpt_tos, message))
        return "250 OK"

    def next_message(self, to: str, timeout: float = 10):
        """The next message for `to` (others are dropped); raises queue.Empty if none comes."""
        while True:
            recipients, message = self.inbox.get(timeout=timeout)
            if to in recipients:
                return message

    def link(self, to: str, timeout: float = 10) -> str:
        body = self.next_message(to, timeout).get_content()
        return re.search(r"https?://\S+", body).group()

    def config(self) -> dict:
        """The app's settings that send through this server."""
        return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": self.port, "MAIL_USE_TLS": False}

    def close(self) -> None:
        self._controller.stop()
