"""Write generated mail into local Maildir and mbox files, and build the demo's mailboxes."""

import os
import re
import socket
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..parsing.registry import load_banks
from .generator import Generated, generate_notifications


def _account(bank: str, address: str, count: int) -> dict:
    # The label is the name the app shows for the bank: the registry's.
    return {"bank": bank, "label": load_banks()[bank].name, "address": address, "count": count}


# The demo's accounts. The first three keep the mockup's proportions (150/650/200) scaled
# up so that a sync at 500-2000 emails/s lasts long enough to watch; Banco Nacional came
# with the second set of bank formats. Each account's seed is its index here, so an
# account added at the end leaves the others' mailboxes as they were.
DEMO_ACCOUNTS: list[dict] = [
    _account("bac", "demo.bac@example.cr", 4_000),
    _account("davibank", "demo.scotia@example.cr", 6_500),
    _account("promerica", "demo.promerica@example.cr", 2_000),
    _account("bn", "demo.bn@example.cr", 1_500),
]

_DATE = re.compile(rb"^Date:[ \t]*(.+?)\r?$", re.MULTILINE)
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def _raw(message: Generated | bytes) -> bytes:
    return message.raw if isinstance(message, Generated) else message


def _received_at(raw: bytes) -> float:
    """The message's Date as a timestamp, so the mailbox orders and dates it like a server."""
    head = raw.split(b"\n\n", 1)[0]
    match = _DATE.search(head)
    if match:
        try:
            return parsedate_to_datetime(match.group(1).decode("ascii", "replace")).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def write_maildir(path: str | Path, messages: Iterable[Generated | bytes]) -> int:
    """Add the messages to the Maildir at path (created if missing), in new/; return the count.

    Each file goes through tmp/ and is renamed into new/, as the Maildir protocol asks. Its
    name carries the delivery time ("<seconds>.M<microseconds>P<pid>Q<n>.<host>"), strictly
    increasing, so readers that order by it see the messages in the order written, and mail
    added later comes after. Its mtime is the message's Date: Dovecot's INTERNALDATE.
    """
    root = Path(path)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
    pid = os.getpid()
    last = 0
    count = 0
    for message in messages:
        raw = _raw(message)
        # Microseconds since the epoch, bumped when the clock has not moved since the last one.
        delivered = last = max(time.time_ns() // 1_000, last + 1)
        name = f"{delivered // 1_000_000}.M{delivered % 1_000_000:06d}P{pid}Q{count}.{host}"
        temporary = root / "tmp" / name
        temporary.write_bytes(raw)
        stamp = _received_at(raw)
        os.utime(temporary, (stamp, stamp))
        os.rename(temporary, root / "new" / name)
        count += 1
    return count


def write_mbox(path: str | Path, messages: Iterable[Generated | bytes]) -> int:
    """Append the messages to the mbox file at path (created if missing); return the count.

    Body lines starting with "From " are quoted with ">" (mboxrd), so readers never
    mistake them for the separator.
    """
    count = 0
    with open(path, "ab") as mbox:
        for message in messages:
            raw = _raw(message)
            stamp = time.asctime(time.gmtime(_received_at(raw)))
            mbox.write(f"From MAILER-DAEMON {stamp}\n".encode("ascii"))
            raw = _FROM_LINE.sub(rb">\1", raw)
            mbox.write(raw if raw.endswith(b"\n") else raw + b"\n")
            mbox.write(b"\n")
            count += 1
    return count


def _maildir_size(path: Path) -> int:
    return sum(
        1 for sub in ("new", "cur") if (path / sub).is_dir() for entry in os.scandir(path / sub)
    )


def build_demo_mailboxes(root: str | Path, *, seed: int = 7) -> list[dict]:
    """Write one Maildir per demo account under root, unless it is already complete.

    Returns the DEMO_ACCOUNTS entries, each with "maildir": its path.
    """
    accounts = []
    for index, account in enumerate(DEMO_ACCOUNTS):
        maildir = Path(root) / account["bank"]
        if _maildir_size(maildir) != account["count"]:
            # A half-written or outdated demo mailbox: start it again from empty.
            for sub in ("new", "cur", "tmp"):
                if (maildir / sub).is_dir():
                    for entry in os.scandir(maildir / sub):
                        os.unlink(entry.path)
            write_maildir(
                maildir,
                generate_notifications(
                    account["count"],
                    seed=seed * 100 + index,
                    banks=(account["bank"],),
                    to_address=account["address"],
                ),
            )
        accounts.append({**account, "maildir": str(maildir)})
    return accounts
