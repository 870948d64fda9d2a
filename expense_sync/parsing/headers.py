"""Header values decoded by hand: tolerant of everything real mail contains."""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from .charsets import b64decode_lenient, decode_bytes
from .text import clean_line

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\([^()]*\)")
_ANGLE_ADDR = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>")
_BARE_ADDR = re.compile(r"[^\s<>()\[\]\",;:]+@[^\s<>()\[\]\",;:]+")
_USUAL_DATE = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(?P<d>\d{1,2}) (?P<mon>[A-Za-z]{3}) (?P<y>\d{4}) "
    r"(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}))? (?P<zone>[+-]\d{4})(?: \(.*\))?",
    re.ASCII,
)
_MONTHS = {
    name: number
    for number, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')


def unfold(value: str) -> str:
    return _FOLDING.sub("", value) if "\n" in value else value


def raw_to_str(value: str) -> str:
    """Raw 8-bit header bytes (kept as surrogates by mime.py) read as UTF-8, else 1252."""
    if value.isascii():
        return value
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value
    return decode_bytes(data)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words; whitespace between two of them is not part of the text."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    last_end = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[last_end : match.start()]
        if between and not (pending and between.isspace()):
            if pending:
                out.append(decode_bytes(b"".join(pending), pending_charset))
                pending = []
            out.append(between)
        charset = match.group(1).split("*", 1)[0]
        if pending and charset.lower() != pending_charset.lower():
            out.append(decode_bytes(b"".join(pending), pending_charset))
            pending = []
        # Bytes of one charset are joined before decoding: a multibyte character may be
        # split across two encoded words.
        pending.append(_decode_word(match.group(2), match.group(3)))
        pending_charset = charset
        last_end = match.end()
    if pending:
        out.append(decode_bytes(b"".join(pending), pending_charset))
    out.append(value[last_end:])
    return "".join(out)


def _decode_word(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", "replace")
    if encoding in "bB":
        return b64decode_lenient(data)
    try:
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return data


def header_text(value: str | None) -> str | None:
    """A display header (Subject) decoded and normalised, or None when absent."""
    if value is None:
        return None
    return clean_line(decode_words(raw_to_str(unfold(value))))


def address(value: str | None) -> str | None:
    """The addr-spec of a From header, lower-cased: the angle address wins over names."""
    if not value:
        return None
    text = _without_names(value)
    found = _ANGLE_ADDR.findall(text) or _BARE_ADDR.findall(text)
    return found[0].lower().strip(".") if found else None


def addresses(values: list[str]) -> list[str]:
    """Every addr-spec in address-list headers (To, Cc), lower-cased."""
    found: list[str] = []
    for value in values:
        text = _without_names(value)
        found.extend(addr.lower() for addr in _ANGLE_ADDR.findall(text))
        rest = _ANGLE_ADDR.sub(" ", text) if "<" in text else text
        if "@" in rest:
            found.extend(addr.lower() for addr in _BARE_ADDR.findall(rest))
    return found


def _without_names(value: str) -> str:
    # Quoted display names and comments may hold anything, even text that looks like an
    # address ("bank@bac.com" <someone@else>): they never count.
    text = raw_to_str(unfold(value))
    if '"' in text:
        text = _QUOTED.sub(" ", text)
    return _COMMENT.sub(" ", text) if "(" in text else text


def header_date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime; a missing zone is read as UTC (RFC 5322)."""
    if not value:
        return None
    text = clean_line(raw_to_str(unfold(value)))
    usual = _USUAL_DATE.fullmatch(text)
    if usual is not None and usual.group("mon").lower() in _MONTHS:
        when = _usual_date(usual)
        if when is not None:
            return when
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _usual_date(match: re.Match[str]) -> datetime | None:
    """The common "Mon, 20 Jul 2026 14:50:00 -0600" without the general parser's cost."""
    zone = match.group("zone")
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    try:
        return datetime(
            int(match.group("y")),
            _MONTHS[match.group("mon").lower()],
            int(match.group("d")),
            int(match.group("H")),
            int(match.group("M")),
            int(match.group("S") or 0),
            tzinfo=timezone(-offset if zone[0] == "-" else offset),
        )
    except (ValueError, OverflowError):
        return None


def message_id(value: str | None) -> str | None:
    """Message-ID exactly as written (with its angle brackets), unfolded."""
    if value is None:
        return None
    text = unfold(raw_to_str(value)).strip()
    return text or None


def content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """MIME type (lower case; text/plain when absent or broken) and its parameters.

    A broken parameter is dropped and the others survive. RFC 2231 "name*=utf-8''..."
    values are decoded; continuations (name*0=) are not needed for charset or boundary.
    """
    text = unfold(value or "")
    ctype = text.split(";", 1)[0].strip().lower()
    if ctype.count("/") != 1 or " " in ctype:
        ctype = "text/plain"
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(text):
        name = name.lower()
        if raw.startswith('"'):
            raw = raw[1:-1] if len(raw) > 1 and raw.endswith('"') else raw[1:]
            raw = raw.replace('\\"', '"')
        if name.endswith("*"):
            params.setdefault(name[:-1], _rfc2231(raw.strip()))
        else:
            params.setdefault(name, raw.strip())
    return ctype, params


def _rfc2231(value: str) -> str:
    """charset'language'percent-encoded -> text."""
    charset, _, rest = value.partition("'")
    _language, _, encoded = rest.partition("'")
    return decode_bytes(unquote_to_bytes(encoded), charset or None)
