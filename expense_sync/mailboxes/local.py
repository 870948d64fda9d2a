"""Read an mbox file or a Maildir (exports, the demo's data) as if it were an IMAP folder.

A message's "UID" is its 1-based position in a stable order (file order for mbox, delivery
time in the file name for Maildir), so a mailbox that only grows syncs incrementally.
Nothing here writes: the mbox is never locked or rewritten, and Maildir messages stay in
new/ with their flags.
"""

from __future__ import annotations

import mailbox
import re
import zlib
from collections.abc import Iterator, Sequence
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import IO, Self

from .base import MailboxError, Scan, sender_matches

_HEADER_LIMIT = 256 * 1024  # stop reading a header block that never ends

Key = int | str  # mbox keys are integers, Maildir keys are file names


class LocalSource:
    """Shared logic; subclasses say how to open the mailbox and order its keys."""

    noun = "buzón"

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self.uidvalidity = 0
        self._mailbox: mailbox.Mailbox | None = None
        self._keys: list[Key] = []

    def _open_mailbox(self) -> tuple[mailbox.Mailbox, list[Key]]:
        raise NotImplementedError

    def open(self) -> Self:
        """Index the messages; raises MailboxError(kind="folder") when the path is unusable."""
        if self._mailbox is not None:
            return self
        try:
            self._mailbox, self._keys = self._open_mailbox()
            # Stable across runs for the same file, but a new export saved over the old one
            # (a new inode) gets a new value, so its different order means a full rescan.
            identity = f"{self.path.resolve()}\0{self.path.stat().st_ino}"
        except (OSError, mailbox.Error) as exc:
            raise self._error(exc) from exc
        self.uidvalidity = zlib.crc32(identity.encode()) or 1
        return self

    def close(self) -> None:
        if self._mailbox is not None:
            self._mailbox.close()
            self._mailbox = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def message_count(self) -> int:
        return len(self._keys)

    def scan(self, uidvalidity: int | None, last_uid: int, senders: Sequence[str]) -> Scan:
        """List messages after ``last_uid``; a source that shrank is rescanned from the start."""
        box = self._opened()
        incremental = uidvalidity == self.uidvalidity and last_uid <= len(self._keys)
        since = last_uid if incremental else 0
        uids = []
        for uid in range(since + 1, len(self._keys) + 1):
            if not senders or sender_matches(self._from_header(box, self._keys[uid - 1]), senders):
                uids.append(uid)
        return Scan(self.uidvalidity, uids, reset=uidvalidity is not None and not incremental)

    def fetch(self, uids: Sequence[int], batch_size: int = 200) -> Iterator[tuple[int, bytes]]:
        """Yield raw messages; ``batch_size`` only matters for IMAP."""
        box = self._opened()
        for uid in uids:
            try:
                data = box.get_bytes(self._keys[uid - 1])
            except KeyError:
                continue  # a Maildir message deleted since the scan
            except OSError as exc:
                raise self._error(exc) from exc
            yield uid, data

    def _opened(self) -> mailbox.Mailbox:
        if self._mailbox is None:
            raise RuntimeError("the mail source is not open; use it in a with block")
        return self._mailbox

    def _from_header(self, box: mailbox.Mailbox, key: Key) -> str:
        try:
            with box.get_file(key) as file:
                headers = _read_header_block(file)
        except KeyError:
            return ""
        except OSError as exc:
            raise self._error(exc) from exc
        try:
            return str(BytesHeaderParser(policy=policy.default).parsebytes(headers)["From"] or "")
        except Exception:
            # The email package raises assorted errors on malformed headers; a From header
            # the modern parser rejects is still matched on its raw text.
            return str(BytesHeaderParser().parsebytes(headers)["From"] or "")

    @property
    def shown(self) -> str:
        # Messages reach the browser: they name the mailbox, never the server's directories.
        return self.path.name or str(self.path)

    def _error(self, exc: BaseException) -> MailboxError:
        if isinstance(exc, PermissionError):
            message = f"No hay permiso para leer el {self.noun} «{self.shown}»."
        elif isinstance(exc, FileNotFoundError | mailbox.NoSuchMailboxError):
            message = f"No se encontró el {self.noun} «{self.shown}». Revise la ruta."
        else:
            message = (
                f"No se pudo leer el {self.noun} «{self.shown}». Revise que sea un "
                f"{self.noun} válido."
            )
        return MailboxError("folder", message)


class MboxSource(LocalSource):
    noun = "archivo mbox"

    def _open_mailbox(self) -> tuple[mailbox.Mailbox, list[Key]]:
        if self.path.is_dir():
            raise MailboxError("folder", f"«{self.shown}» es una carpeta, no un archivo mbox.")
        box = mailbox.mbox(self.path, create=False)
        return box, sorted(box.keys())  # integer keys in file order


class MaildirSource(LocalSource):
    noun = "Maildir"

    def _open_mailbox(self) -> tuple[mailbox.Mailbox, list[Key]]:
        if not (self.path / "cur").is_dir() or not (self.path / "new").is_dir():
            if not self.path.exists():
                raise FileNotFoundError(self.path)
            raise MailboxError("folder", f"«{self.shown}» no es un Maildir: le faltan cur/ y new/.")
        # factory=None returns raw messages and keeps the mailbox module from parsing them.
        box = mailbox.Maildir(self.path, factory=None, create=False)
        return box, sorted(box.keys(), key=_delivery_order)


def _delivery_order(key: Key) -> tuple[int, int, str]:
    # Keys are file names without ":2,FLAGS", usually "<seconds>.M<microseconds>P<pid>...".
    # Microseconds are not zero-padded, so plain name order would put a message delivered
    # later in the same second before older ones and shift every position after it.
    match = re.match(r"(\d+)\.(?:M(\d+))?", str(key))
    if match is None:
        return (2**63, 0, str(key))
    return (int(match[1]), int(match[2] or 0), str(key))


def _read_header_block(file: IO[bytes]) -> bytes:
    lines = []
    size = 0
    for line in file:
        if line in (b"\n", b"\r\n") or size > _HEADER_LIMIT:
            break
        lines.append(line)
        size += len(line)
    return b"".join(lines)
