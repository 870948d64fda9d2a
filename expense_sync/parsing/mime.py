"""Reading raw bytes into a Mail: the envelope headers and the readable bodies.

A small byte-level MIME reader rather than the email package: it needs only a few
headers, the text and HTML parts and attached messages, and it must never raise.
policy.default raises IndexError on headers seen in real mail; policy.compat32 copes,
but reading a message with it took three times as long as this reader, which kept the
whole parse from being four times faster than policy.default (bench/parse.py).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime

from . import headers
from .charsets import b64decode_lenient, decode_bytes
from .text import Body, fold, strip_forward_prefixes

_MAX_PARTS = 50  # a notification has one to three; beyond that we are reading junk
_MAX_DEPTH = 8  # multipart nesting, and forwards attached inside forwards
_FIELD_START = re.compile(r"\n(?![ \t])")

Fields = dict[str, list[str]]


@dataclass
class Mail:
    """What the bank parsers see of one message."""

    sender: str | None = None
    subject: str | None = None
    to: list[str] = field(default_factory=list)
    sent_at: datetime | None = None
    message_id: str | None = None
    plain: str | None = None
    html: str | None = None
    attached: list[Mail] = field(default_factory=list)
    # False when the message was cut off inside that part (see _read_part).
    plain_complete: bool = True
    html_complete: bool = True
    _bodies: list[Body] | None = field(default=None, init=False, repr=False)

    @property
    def bare_subject(self) -> str:
        """The subject rules match: without the "RV:"/"Fwd:" a forward adds."""
        return strip_forward_prefixes(self.subject or "")

    @property
    def folded_subject(self) -> str:
        return fold(self.bare_subject)

    def bodies(self) -> list[Body]:
        """The text part, then the HTML part, when they hold any text; built on first use."""
        if self._bodies is None:
            built = []
            if self.plain is not None:
                built.append(Body.from_text(self.plain, complete=self.plain_complete))
            if self.html is not None:
                built.append(Body.from_html(self.html, complete=self.html_complete))
            self._bodies = [body for body in built if body.lines]
        return self._bodies

    def first_body(self) -> Body:
        found = self.bodies()
        return found[0] if found else Body([])


def read_message(raw: bytes) -> Mail:
    """Read raw RFC 5322 bytes; a broken part is skipped and the rest is still read."""
    # Mail that arrived whole ends with a line break (or closes its HTML); bytes cut
    # mid-line do not.
    whole = raw.endswith(b"\n") or raw[-32:].rstrip().lower().endswith((b"</html>", b"</body>"))
    return _read_message(raw, 0, whole)


def _read_message(raw: bytes, depth: int, complete: bool) -> Mail:
    fields, body = split_message(raw)
    mail = Mail(
        sender=headers.address(_first(fields, "from")),
        subject=headers.header_text(_first(fields, "subject")),
        to=headers.addresses(fields.get("to", [])),
        sent_at=headers.header_date(_first(fields, "date")),
        message_id=headers.message_id(_first(fields, "message-id")),
    )
    try:
        _read_part(fields, body, mail, depth, [_MAX_PARTS], complete)
    except Exception:  # the envelope alone still tells whose message it is
        pass
    return mail


def split_message(raw: bytes) -> tuple[Fields, bytes]:
    """Header fields by lower-case name, values as written (folded), and the body."""
    if raw.startswith(b"From "):  # an mbox separator line left in place
        raw = raw.partition(b"\n")[2]
    head, body = _split_head(raw)
    # Undecodable bytes become surrogates; headers.raw_to_str reads them back as text.
    text = head.decode("ascii", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    fields: Fields = {}
    for line in _FIELD_START.split(text):
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if colon and name and " " not in name:
            fields.setdefault(name, []).append(value.strip())
    return fields, body


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    # The header ends at the first empty line, whether lines end in LF or CRLF.
    if raw.startswith((b"\n", b"\r\n")):
        return b"", raw.partition(b"\n")[2]
    lf, crlf = raw.find(b"\n\n"), raw.find(b"\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return raw[:crlf], raw[crlf + 3 :]
    if lf >= 0:
        return raw[:lf], raw[lf + 2 :]
    return raw, b""


def _first(fields: Fields, key: str) -> str | None:
    values = fields.get(key)
    return values[0] if values else None


def _read_part(
    fields: Fields, body: bytes, mail: Mail, depth: int, budget: list[int], complete: bool
) -> None:
    """Collect the first text and HTML parts and any attached messages.

    `complete` is False for a part the message was cut off in: the last part of a
    multipart with no closing boundary, or the body of bytes that stop mid-line.
    """
    budget[0] -= 1
    if budget[0] < 0:
        return
    ctype, params = headers.content_type(_first(fields, "content-type"))
    if ctype.startswith("multipart/"):
        boundary = params.get("boundary") or _first_delimiter(body)
        if boundary and depth < _MAX_DEPTH:
            parts, closed = split_multipart(body, boundary)
            for index, part in enumerate(parts):
                try:
                    part_fields, part_body = split_message(part)
                    whole = closed or index < len(parts) - 1
                    _read_part(part_fields, part_body, mail, depth + 1, budget, whole)
                except Exception:  # one broken part must not lose the others
                    continue
        return
    disposition = (_first(fields, "content-disposition") or "").split(";", 1)[0]
    if ctype == "message/rfc822" and depth < _MAX_DEPTH:
        # A forward "as attachment" carries the original whole.
        mail.attached.append(_read_message(_payload(fields, body), depth + 1, complete))
    elif ctype in ("text/plain", "text/html") and disposition.strip().lower() != "attachment":
        if ctype == "text/plain" and mail.plain is None:
            mail.plain = decode_bytes(_payload(fields, body), params.get("charset"))
            mail.plain_complete = complete
        elif ctype == "text/html" and mail.html is None:
            mail.html = decode_bytes(_payload(fields, body), params.get("charset"))
            mail.html_complete = complete


def split_multipart(body: bytes, boundary: str) -> tuple[list[bytes], bool]:
    """The parts between boundary lines, and whether the closing boundary was found.

    A message cut short keeps its last part; the caller treats that part as incomplete.
    """
    # A plain find rather than a regex: every message has its own boundary, and compiling
    # a pattern per message would cost more than the rest of the parse.
    marker = b"--" + boundary.encode("utf-8", "surrogateescape")
    parts: list[bytes] = []
    start: int | None = None
    found = body.find(marker)
    while found >= 0:
        after = found + len(marker)
        closing = body.startswith(b"--", after)
        line_end = body.find(b"\n", after)
        line_end = len(body) if line_end < 0 else line_end
        rest = body[after + 2 if closing else after : line_end]
        # A delimiter is a whole line: "--b" at a line start, maybe "--" and blanks after.
        if (found == 0 or body[found - 1] == 0x0A) and not rest.strip(b" \t\r"):
            if start is not None:
                parts.append(_strip_newline(body[start:found]))
            if closing:  # the epilogue after the closing delimiter is not a part
                return parts, True
            start = line_end + 1
        found = body.find(marker, after)
    if start is not None:
        parts.append(body[start:])
    return parts, False


def _first_delimiter(body: bytes) -> str | None:
    # A multipart that lost its boundary parameter: its first "--..." line is one.
    for line in body.split(b"\n", 50)[:50]:
        line = line.rstrip(b"\r \t")
        if line.startswith(b"--") and len(line) > 2 and not line.endswith(b"--"):
            return line[2:].decode("ascii", "surrogateescape")
    return None


def _strip_newline(part: bytes) -> bytes:
    # The line break before a delimiter belongs to the delimiter (RFC 2046).
    if part.endswith(b"\r\n"):
        return part[:-2]
    return part[:-1] if part.endswith(b"\n") else part


def _payload(fields: Fields, body: bytes) -> bytes:
    encoding = (_first(fields, "content-transfer-encoding") or "").strip().lower()
    if encoding == "base64":
        return b64decode_lenient(body)
    if encoding == "quoted-printable":
        try:
            return binascii.a2b_qp(body)
        except (binascii.Error, ValueError):
            return body
    return body
