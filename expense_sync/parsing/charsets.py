"""Bytes to text the way mail clients and browsers do it: lenient, and never raising."""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

# WHATWG Encoding Standard: these labels all mean windows-1252, which is what senders
# that say "iso-8859-1" or "us-ascii" really write (the euro sign is 0x80 there).
_WINDOWS_1252 = frozenset(
    "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 "
    "iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 latin-1 us-ascii windows-1252 x-cp1252".split()
)
# Python also knows codecs that are no mail charset at all ("unicode_escape" would turn
# a written \x31 into a digit, "base64" is no text encoding): only real character sets pass.
_CHARSET_CODEC = re.compile(
    r"(?:utf-(?:8|16|32)(?:-[lb]e)?|iso8859-\d+|cp\d+|koi8-[rtu]|mac-[a-z]+|gb\w*|big5\w*"
    r"|euc[-_]\w+|iso2022[-_]\w+|shift_jis\w*|latin-1|ascii|tis-620|hz|johab)"
)
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]+")
_PADDING = re.compile(rb"=+")


@lru_cache(maxsize=256)
def codec_for(label: str | None) -> str | None:
    """Python codec for a charset label, or None when the label is unknown or not text."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _WINDOWS_1252:
        return "cp1252"
    if label in ("utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"):
        return "utf-8"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    return info.name if _CHARSET_CODEC.fullmatch(info.name) else None


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Decode with the declared charset; unknown or absent labels try UTF-8, then 1252."""
    codec = codec_for(label)
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except (LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def b64decode_lenient(data: bytes) -> bytes:
    """Base64 that survives line noise, missing padding and padding in the middle."""
    data = _BASE64_JUNK.sub(b"", data)
    stripped = data.rstrip(b"=")
    if b"=" not in stripped:
        return _b64_chunk(stripped)
    # Concatenated encoders leave "=" inside the data; each chunk decodes on its own.
    return b"".join(_b64_chunk(chunk) for chunk in _PADDING.split(stripped))


def _b64_chunk(chunk: bytes) -> bytes:
    usable = len(chunk) - len(chunk) % 4
    if len(chunk) % 4 == 1:
        chunk = chunk[:usable]  # one stray character cannot carry a byte
    chunk += b"=" * (-len(chunk) % 4)
    try:
        return binascii.a2b_base64(chunk)
    except binascii.Error:
        return b""
