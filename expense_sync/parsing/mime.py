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
from .charsets import b64decode_lenient, codec_for, decode_bytes
from .text import MAX_TEXT_CHARS, Body, fold, strip_forward_prefixes

_MAX_PARTS = 50  # a notification has one to three; beyond that we are reading junk
_MAX_DEPTH = 8  # multipart nesting, and forwards attached inside forwards
_FIELD_START = re.compile(r"\n(?![ \t])")

Fields = dict[str, list[str]]

# Charset sanity (decode_text). Signs that bytes were read with the wrong charset:
# - replacement and control characters;
# - Latin-1 characters that Spanish does not use: UTF-8 read as windows-1252 ("Ã³", "Â¿",
#   "â€œ"), and accents read as cp850 or mac-roman ("Autorizaci¾n", "AutorizaciÛn");
# - another script glued to a Latin letter: accents read as koi8-r, windows-1251 or an
#   Asian multibyte charset ("AutorizaciСn", "recibiцЁ", "PﾉREZ"). Not anywhere: Russian
#   or Japanese correctly labelled is no damage.
# Letters of Latin Extended (ł, ń, ő) are no sign at all: they are real letters.
_BROKEN = r"\ufffd\x00-\x08\x0b\x0e-\x1f\x7f-\x9f"
_NOT_SPANISH = re.escape(
    "".join(
        chr(code)
        for code in range(0xA0, 0x100)
        if chr(code) not in "\u00a0¡¢£¥©ª«®°º»¿áéíñóúüÁÉÍÑÓÚÜ"
    )
)
_SCRIPTS = r"\u02b0-\u02ff\u0370-\u1fff\u2190-\u25ff\u2e80-\ud7ff\uf900-\ufaff\uff00-\uffef"
_DAMAGE = re.compile(
    rf"[{_BROKEN}{_NOT_SPANISH}]|(?<=[A-Za-z])[{_SCRIPTS}]|[{_SCRIPTS}](?=[A-Za-z])"
)
# Text read as windows-1252 is wrong when it was UTF-8 (mojibake starts with one of these
# letters) or holds bytes 1252 lacks. One character class is searched ten times faster
# than the signs, and good Spanish holds none of these characters.
_SUSPECT = re.compile(rf"[{_BROKEN}ÂÃâï]")
# The bank's Spanish: its labels, the accented words of its notices, its commonest words.
_SPANISH_WORDS = re.compile(
    r"\b(?:comercio|monto|autorización|referencia|fecha|transacción|número|país|día|crédito"
    r"|débito|dólares|realizó|aplicó|recibió|notificación|de|la|el|por|su)\b",
    re.I,
)
_SPANISH_LETTERS = re.compile("[áéíóúüñÁÉÍÓÚÜÑ¿¡]")
# What banks that mislabel their mail really write, most telling first: UTF-8 is strict,
# so it reads as UTF-8 only what is UTF-8; ISO-8859-1 never fails.
_USUAL_SUSPECTS = ("utf-8", "cp1252", "latin-1")


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
            mail.plain = decode_text(_payload(fields, body), params.get("charset"))
            mail.plain_complete = complete
        elif ctype == "text/html" and mail.html is None:
            mail.html = decode_text(_payload(fields, body), params.get("charset"))
            mail.html_complete = complete


def decode_text(data: bytes, label: str | None) -> str:
    """A text part's characters: the declared charset's reading, unless it is garbled.

    A garbled reading is checked against the usual suspects: UTF-8 with replacement
    characters, windows-1252 with a sign of UTF-8 in it, and any reading of 8-bit bytes
    in another charset (cp850 or mac-roman turn "ó" into "¾" or "Û", which only the
    labels tell). A suspect replaces it only when it holds more of the bank's words, or
    as many with less damage: correctly labelled text, in any charset, reads as it did.
    """
    text = decode_bytes(data, label)
    if data.isascii():
        return text
    codec = codec_for(label)
    if codec is None:  # decode_bytes already tried the suspects, UTF-8 first
        return text
    if codec == "utf-8" and "\ufffd" not in text:  # valid UTF-8 reads best as UTF-8
        return text
    if codec == "cp1252" and not _SUSPECT.search(text, 0, MAX_TEXT_CHARS):
        return text
    declared = _plausibility(text)
    best, best_score = text, declared
    for suspect in _USUAL_SUSPECTS:
        try:
            candidate = data.decode(suspect)
        except UnicodeDecodeError:
            continue
        score = _plausibility(candidate)
        # Accents alone never overrule the declared label: Russian read as 1252 has many.
        if score[:2] > declared[:2] and score > best_score:
            best, best_score = candidate, score
    return best


def _plausibility(text: str) -> tuple[int, int, int]:
    """How much a reading looks like a Costa Rican bank's Spanish: words, damage, accents."""
    head = text[:MAX_TEXT_CHARS]  # the part of a huge body that is read at all
    return (
        len(_SPANISH_WORDS.findall(head)),
        -len(_DAMAGE.findall(head)),
        len(_SPANISH_LETTERS.findall(head)),
    )


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
