"""What a server's NO, BAD or BYE means, in the words of Dovecot, Cyrus, Courier, Gmail, Exchange.

Servers agree on few response codes (RFC 5530), so each meaning also lists the servers' own
phrases, as they send them:

- throttled: "[LIMIT]", "[UNAVAILABLE]", "[INUSE]", Gmail's "[ALERT] Too many simultaneous
  connections", Exchange's "Server Unavailable. 15" and "Request is throttled. Suggested
  Backoff Time: 299910 milliseconds", Dovecot's "Maximum number of connections from user+IP
  exceeded";
- quota: "[OVERQUOTA]", Gmail's "Account exceeded command or bandwidth limits";
- missing folder: "[NONEXISTENT]", Dovecot's "Mailbox doesn't exist", Cyrus's "Mailbox does
  not exist", Courier's "Unable to open this mailbox." and "Mailbox does not exist, or must
  be subscribed to.", Gmail's "Unknown Mailbox", Exchange's "The specified folder could not
  be found in the store" and "Folder not found";
- web login: Gmail's "[ALERT] Please log in via your web browser", "Web login required";
- app password: Gmail's "[ALERT] Application-specific password required";
- not connected: Exchange Online's "User is authenticated but not connected." (a wrong
  password or IMAP turned off for the mailbox, told after LOGIN said OK).
"""

from __future__ import annotations

import re
from typing import Literal

Meaning = Literal["throttled", "quota", "folder", "web_login", "app_password", "not_connected"]

_MEANINGS: list[tuple[Meaning, re.Pattern[str]]] = [
    ("quota", re.compile(r"\[OVERQUOTA\]|exceeded command or bandwidth limits", re.I)),
    (
        "throttled",
        re.compile(
            r"\[(?:LIMIT|THROTTLED|UNAVAILABLE|INUSE)\]|too many (?:simultaneous )?connections"
            r"|server unavailable|request is throttled|suggested backoff time"
            r"|maximum number of connections",
            re.I,
        ),
    ),
    ("not_connected", re.compile(r"authenticated but not connected", re.I)),
    ("web_login", re.compile(r"log ?in via your web browser|web login required", re.I)),
    ("app_password", re.compile(r"application-specific password required", re.I)),
    (
        "folder",
        re.compile(
            r"\[NONEXISTENT\]|mailbox does(?:n't| not) exist|unknown mailbox"
            r"|could not be found in the store|unable to open this mailbox"
            r"|no such (?:mailbox|folder)|folder not found",
            re.I,
        ),
    ),
]

_BACKOFF = re.compile(r"backoff time:\s*(\d+)\s*milliseconds", re.I)


def meaning(text: str) -> Meaning | None:
    """The kind of refusal ``text`` (a server's reply) words, if it is one we know."""
    return next((name for name, pattern in _MEANINGS if pattern.search(text)), None)


def suggested_delay(text: str) -> float | None:
    """Seconds the server asked to wait before trying again, when it says."""
    found = _BACKOFF.search(text)
    return int(found[1]) / 1000 if found else None


def server_text(text: str, password: str) -> str:
    """The server's own words from an imaplib error, minus protocol noise and secrets."""
    quoted = re.search(r"b(['\"])(.*)\1", text)  # imaplib shows some replies as bytes reprs
    if quoted:
        text = quoted.group(2)
    text = re.sub(r"^\w+ failed: ", "", text)  # IMAPClient's "select failed: " prefix
    text = re.sub(r"^\* \w+ ", "", text)  # a greeting: "* BYE ..."
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # response codes such as [CANNOT]
    text = re.sub(r"\s*\(\d+\.\d+ \+ [\d.+ ]+secs\)", "", text)  # Dovecot's timings
    if password:
        text = text.replace(password, "***")
    return text.strip()[:200]
