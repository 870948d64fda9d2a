"""Raw messages from files, directories of .eml files and mbox files (for parse-emails)."""

from __future__ import annotations

import mailbox
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
    # The standard library's reader, as local mail sources use it (mailboxes/local.py): it
    # indexes the file once and reads each message when asked, so a multi-gigabyte export
    # never sits in memory at once. It leaves mboxrd's ">From " escapes as they are.
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), 1):
            yield f"{path}#{number}", _ESCAPED_FROM.sub(rb"\1", box.get_bytes(key))
    finally:
        box.close()
