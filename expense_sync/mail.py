"""Mail to the people who use the app: through the configured SMTP server, or the log.

Registration sends one message whether the address has an account or not, while the
request waits. A reset link goes only to an address with an account, so it is sent in
the background: the answer's timing must not say which addresses have one. Without
MAIL_SERVER (development) the message goes to the log.
"""

import logging
import smtplib
import threading
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger(__name__)


def send_later(to: str, subject: str, body: str) -> None:
    """Send in a thread of its own (a greenlet under gevent); a failure is only logged."""
    app = current_app._get_current_object()

    def deliver():
        with app.app_context():
            try:
                send(to, subject, body)
            except MailError:
                pass  # logged by send(); the person may ask again

    threading.Thread(target=deliver, name="mail", daemon=True).start()


class MailError(Exception):
    """The SMTP server could not be reached or refused the message."""


def send(to: str, subject: str, body: str) -> None:
    """Send a plain-text message; raises MailError when the server does not take it."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if not config["MAIL_SERVER"]:
        log.warning(
            "MAIL_SERVER is not set; this message was not sent: To: %s, Subject: %s", to, subject
        )
        for line in body.splitlines():  # one log line each: log lines hold no line breaks
            log.warning("  %s", line)
        return
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("sending mail failed: %s", exc)
        raise MailError(str(exc)) from exc
