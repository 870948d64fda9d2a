"""Fast string builders for raw RFC 5322 messages.

The email package's generator costs about a millisecond per message; benchmarks need
thousands per second, so headers and MIME bodies are assembled from strings here. The
output mimics what Python's generator (and the banks' mailers) produce: LF line ends,
RFC 2047 encoded words, ``===============N==`` boundaries.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Characters that may stay literal inside a "Q" encoded word, in a Subject or a display name.
_Q_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
_Q_CACHE: dict[str, str] = {" ": "_"}
# An encoded word may not exceed 75 characters; "=?utf-8?q?" and "?=" take 12 of them.
_Q_PAYLOAD = 63
# Python's codec names for the charsets the banks declare.
CODECS = {"utf-8": "utf-8", "windows-1252": "cp1252", "iso-8859-1": "latin-1", "us-ascii": "ascii"}


@dataclass(frozen=True)
class Part:
    """One text part: its MIME subtype, the decoded text and how it travels."""

    subtype: str  # "plain" or "html"
    text: str
    charset: str = "utf-8"
    encoding: str = "quoted-printable"  # or "base64", "8bit", "7bit"


def _q_char(char: str) -> str:
    encoded = _Q_CACHE.get(char)
    if encoded is None:
        if char in _Q_SAFE:
            encoded = char
        else:
            encoded = "".join(f"={byte:02X}" for byte in char.encode("utf-8"))
        _Q_CACHE[char] = encoded
    return encoded


def _q_words(text: str) -> list[str]:
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        encoded = _q_char(char)
        if size + len(encoded) > _Q_PAYLOAD:
            words.append("=?utf-8?q?" + "".join(chunk) + "?=")
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    words.append("=?utf-8?q?" + "".join(chunk) + "?=")
    return words


def header_tokens(text: str) -> list[str]:
    """Split header text into foldable tokens, encoding the stretch that holds non-ASCII.

    Like Python's generator, the words from the first to the last non-ASCII one become
    encoded words (so the spaces between them survive) and the rest stays readable.
    """
    words = text.split(" ")
    non_ascii = [index for index, word in enumerate(words) if not word.isascii()]
    if not non_ascii:
        return words
    first, last = non_ascii[0], non_ascii[-1]
    return words[:first] + _q_words(" ".join(words[first : last + 1])) + words[last + 1 :]


def header(name: str, text: str) -> str:
    """Return ``Name: value`` folded at 78 columns, with a trailing newline."""
    line = name + ":"
    lines = []
    for token in header_tokens(text):
        if len(line) + 1 + len(token) > 78 and line != name + ":":
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return "\n".join(lines) + "\n"


def address(display: str | None, addr: str) -> str:
    """Return an address header value: ``Display Name <addr>`` or the bare address."""
    if not display:
        return addr
    return " ".join(header_tokens(display)) + f" <{addr}>"


def rfc2822_date(moment: datetime) -> str:
    """Format an aware datetime as an RFC 5322 Date value in its own offset."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def _encode_body(part: Part) -> str:
    data = part.text.encode(CODECS[part.charset])
    if part.encoding == "quoted-printable":
        return binascii.b2a_qp(data, istext=True).decode("ascii")
    if part.encoding == "base64":
        return base64.encodebytes(data).decode("ascii")
    # 8bit bodies are written as their charset's bytes; latin-1 round-trips them losslessly.
    return data.decode("latin-1")


def _part_headers(part: Part) -> str:
    return (
        f'Content-Type: text/{part.subtype}; charset="{part.charset}"\n'
        f"Content-Transfer-Encoding: {part.encoding}\n"
    )


def assemble(envelope: str, parts: list[Part], boundary: str) -> bytes:
    """Join the envelope headers and one part, or several as multipart/alternative."""
    if len(parts) == 1:
        part = parts[0]
        text = envelope + _part_headers(part) + "MIME-Version: 1.0\n\n" + _encode_body(part)
    else:
        pieces = [
            envelope,
            f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n\n',
        ]
        for index, part in enumerate(parts):
            pieces.append(f"--{boundary}\n")
            pieces.append(_part_headers(part))
            # Python's generator repeats MIME-Version on every part but the first one.
            pieces.append("MIME-Version: 1.0\n\n" if index else "\n")
            body = _encode_body(part)
            pieces.append(body if body.endswith("\n") else body + "\n")
            pieces.append("\n")
        pieces.append(f"--{boundary}--\n")
        text = "".join(pieces)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("latin-1")
