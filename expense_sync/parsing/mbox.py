"""Raw messages from files, directories of .eml files and mbox files (for parse-emails)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

# mboxrd/mboxo writers escape body lines starting "From " as ">From ".
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.M)


def iter_messages(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) for every message: a file, each .eml of a directory (sorted),
    or each message of an mbox file (a file whose first line starts with "From "),
    labelled "path#N" counting from 1."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.suffix.lower() == ".eml" and child.is_file():
                    yield str(child), child.read_bytes()
        elif _is_mbox(path):
            yield from _mbox_messages(path)
        else:
            yield str(path), path.read_bytes()


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _mbox_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    # Read line by line so a multi-gigabyte export never sits in memory at once.
    count = 0
    lines: list[bytes] = []
    previous_blank = True
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and previous_blank:
                if count:
                    yield f"{path}#{count}", _message(lines)
                count += 1
                lines = []
            else:
                lines.append(line)
            previous_blank = line in (b"\n", b"\r\n")
    if count:
        yield f"{path}#{count}", _message(lines)


def _message(lines: list[bytes]) -> bytes:
    # The blank line before the next "From " separator belongs to the mbox, not the message.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return _ESCAPED_FROM.sub(rb"\1", b"".join(lines))
