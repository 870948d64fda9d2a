"""Text normalisation and HTML-to-text, so every rule matches one clean shape of the body."""

from __future__ import annotations

import re
import unicodedata

from selectolax.lexbor import LexborHTMLParser

# Notifications are a few kB. Anything far bigger is not one, and scanning megabytes of it
# with every rule would cost seconds per message, so only the head is looked at.
MAX_TEXT_CHARS = 500_000

# Invisible characters that templates and mail clients sprinkle between letters.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060\ufeff]")

# Block elements end a line; table cells are separated by a tab, so a two-cell row reads
# like the "Label value" lines of the text/plain parts.
_BLOCKS = frozenset(
    "address article blockquote br caption center dd div dl dt footer h1 h2 h3 h4 h5 h6 "
    "header hr li ol p pre section table tbody tfoot thead title tr ul".split()
)
_CELLS = frozenset(("td", "th"))
_FORWARD_PREFIX = re.compile(r"^(?:\s*(?:rv|fw|fwd|tr)\s*:)+\s*", re.I)
_NOT_TEXT = frozenset(("script", "style", "noscript", "template", "title"))


def _fold_table() -> dict[str, str]:
    # One character in, one out: folded text keeps the offsets of the original, so a
    # rule can match accent-free and still slice the merchant name with its accents.
    table = {}
    for code in range(0xC0, 0x250):
        base = unicodedata.normalize("NFD", chr(code))[0]
        if base != chr(code) and base.isascii():
            table[chr(code)] = base
    return table


_FOLD = _fold_table()
# A regex with a callback beats str.translate here: few characters need folding.
_ACCENTED = re.compile("[" + re.escape("".join(_FOLD)) + "]")


def _unaccent(match: re.Match[str]) -> str:
    return _FOLD[match.group()]


def fold(text: str) -> str:
    """Drop accents, keeping length and case: "Autorización" -> "Autorizacion"."""
    return text if text.isascii() else _ACCENTED.sub(_unaccent, text)


def clean_line(text: str) -> str:
    """NFC, no invisible characters, single spaces (NBSP and tabs included)."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    return " ".join(text.split())


def clean_lines(text: str) -> list[str]:
    """The non-empty lines of a text, each cleaned; only whole lines of a huge text."""
    if len(text) > MAX_TEXT_CHARS:
        # Cut at a line break: a line cut in two could turn "72,000.00" into "72,00".
        text = text[: max(text.rfind("\n", 0, MAX_TEXT_CHARS), 0)]
    if "&nbsp;" in text:
        text = text.replace("&nbsp;", " ")
    if not text.isascii():
        text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    if "|" in text:
        # Tables turned to text by mail clients and converters: "| Monto: | CRC 6,980.00 |".
        # The cells read like the two cells of an HTML row.
        text = text.replace("|", " ")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [line for line in lines if line]


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, one line per block, cells separated by tabs."""
    tree = LexborHTMLParser(html[:MAX_TEXT_CHARS])
    root = tree.body or tree.root  # the body leaves <head> (styles, title) out
    if root is None:
        return ""
    out: list[str] = []
    for node in root.traverse(include_text=True):
        tag = node.tag
        if tag == "-text":
            parent = node.parent
            if parent is not None and parent.tag in _NOT_TEXT:
                continue
            # Text right after a closed block starts a new line (<p>a</p>b).
            prev = node.prev
            if prev is not None and prev.tag in _BLOCKS:
                out.append("\n")
            out.append(node.text_content or "")
        elif tag in _BLOCKS:
            out.append("\n")
        elif tag in _CELLS:
            out.append("\t")
    return "".join(out)


def strip_forward_prefixes(subject: str) -> str:
    """The subject without "RV:", "FW:", "Fwd:" prefixes, however many."""
    return _FORWARD_PREFIX.sub("", subject)


class Body:
    """One readable version of a message body (text part or HTML part), as clean lines."""

    def __init__(self, lines: list[str], complete: bool = True) -> None:
        self.lines = lines
        # False when the message was cut off in this part: its last amount may be cut too.
        self.complete = complete
        # Lines never hold a newline, so one fold of the whole text splits back exactly.
        self.folded = fold("\n".join(lines)).split("\n") if lines else []
        # All lines joined by spaces: sentences that a hard wrap split become whole again.
        self.flat = " ".join(lines)
        self.flat_folded = " ".join(self.folded)
        # Folded and lower-cased, for cheap substring tests before a regex.
        self.lower = self.flat_folded.lower()

    @classmethod
    def from_text(cls, text: str, complete: bool = True) -> Body:
        return cls(clean_lines(text), complete)

    @classmethod
    def from_html(cls, html: str, complete: bool = True) -> Body:
        # html_to_text reads only the head of a huge document, which may end mid-amount.
        return cls(clean_lines(html_to_text(html)), complete and len(html) <= MAX_TEXT_CHARS)
