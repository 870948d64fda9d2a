"""Find mail from given senders with UID SEARCH, also on servers that refuse a UTF-8 search.

A sender with non-ASCII characters (the user's own "josé@correo.cr") needs ``SEARCH CHARSET
UTF-8``, which some servers refuse (``BAD``, or ``NO [BADCHARSET]``). Then the ASCII senders
are still searched on the server, and the rest of the mail in range is matched by its From
header here, the way the server would have matched it.
"""

from __future__ import annotations

import imaplib
import logging
from collections.abc import Sequence
from email import policy
from email.parser import Parser

from imapclient import IMAPClient

from .base import sender_matches

log = logging.getLogger(__name__)

HEADER_BATCH = 500
FROM_PEEK = "BODY.PEEK[HEADER.FIELDS (FROM)]"  # never marks mail read
FROM_FIELD = b"BODY[HEADER.FIELDS (FROM)]"


def search_senders(client: IMAPClient, since: int, senders: Sequence[str]) -> list[int]:
    """UIDs above ``since`` of mail from any of ``senders`` (all mail when none), ascending."""
    span = ["UID", f"{since + 1}:*"] if since else []
    if all(sender.isascii() for sender in senders):
        found = client.search(span + from_any(senders) or ["ALL"])
    else:
        try:
            found = client.search(span + from_any(senders), charset="UTF-8")
        except imaplib.IMAP4.error as exc:
            if not _refused(exc):
                raise
            log.info("the server refused a UTF-8 search; matching senders locally")
            found = _search_locally(client, span, senders)
    # "UID n:*" always matches the newest message, even when its UID is below n.
    return sorted(uid for uid in found if uid > since)


def from_any(senders: Sequence[str]) -> list[str]:
    # SEARCH ORs take exactly two keys, so n senders nest as OR FROM a (OR FROM b FROM c).
    criteria: list[str] = []
    for sender in senders[:-1]:
        criteria += ["OR", "FROM", sender]
    return criteria + ["FROM", senders[-1]] if senders else []


def _refused(exc: imaplib.IMAP4.error) -> bool:
    # Without LITERAL+ IMAPClient waits to send the 8-bit term; a refusal then arrives as
    # an abort, although the connection is fine. Any other abort is a dropped connection.
    return not isinstance(exc, imaplib.IMAP4.abort) or "waiting for continuation" in str(exc)


def _search_locally(client: IMAPClient, span: list[str], senders: Sequence[str]) -> set[int]:
    ascii_only = [sender for sender in senders if sender.isascii()]
    found = set(client.search(span + from_any(ascii_only))) if ascii_only else set()
    rest = sorted(set(client.search(span or ["ALL"])) - found)
    for start in range(0, len(rest), HEADER_BATCH):
        response = client.fetch(rest[start : start + HEADER_BATCH], [FROM_PEEK])
        found.update(
            uid
            for uid, data in response.items()
            if sender_matches(_from_header(data.get(FROM_FIELD, b"")), senders)
        )
    return found


def _from_header(raw: bytes) -> str:
    # Servers pass raw UTF-8 headers through and RFC 2047 words encoded; read both.
    text = raw.decode("utf-8", errors="replace")
    try:
        return str(Parser(policy=policy.default).parsestr(text, headersonly=True)["From"] or "")
    except Exception:
        # The email package raises assorted errors on malformed headers; match the raw text.
        return text
