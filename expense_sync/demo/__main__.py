"""Write generated notifications to disk: python -m expense_sync.demo FORMAT PATH [options]."""

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from . import (
    BANKS,
    Generated,
    build_demo_mailboxes,
    generate_notifications,
    write_maildir,
    write_mbox,
)


def _write_samples(path: Path, messages: Iterable[Generated]) -> int:
    """NNNNN.eml files and an expected.jsonl beside them, like the shared samples."""
    path.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path / "expected.jsonl", "w", encoding="utf-8") as expected:
        for count, generated in enumerate(messages, start=1):
            name = f"{count - 1:05d}.eml"
            (path / name).write_bytes(generated.raw)
            line = {"file": name, "message_id": generated.message_id, **generated.expected}
            expected.write(json.dumps(line, ensure_ascii=False) + "\n")
    return count


def main() -> None:
    """Generate bank notifications into a Maildir, an mbox, .eml files, or the demo's boxes."""
    parser = argparse.ArgumentParser(prog="python -m expense_sync.demo", description=main.__doc__)
    parser.add_argument("format", choices=("maildir", "mbox", "eml", "demo"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bank", action="append", choices=BANKS, dest="banks")
    parser.add_argument("--to", default="demo@example.cr", help="the mailbox's own address")
    args = parser.parse_args()
    if args.format == "demo":
        for account in build_demo_mailboxes(args.path, seed=args.seed or 7):
            print(f"{account['label']}: {account['count']} messages in {account['maildir']}")
        return
    messages = generate_notifications(
        args.count, seed=args.seed, banks=tuple(args.banks or BANKS), to_address=args.to
    )
    writers = {"maildir": write_maildir, "mbox": write_mbox, "eml": _write_samples}
    print(f"{writers[args.format](args.path, messages)} messages written to {args.path}")


if __name__ == "__main__":
    main()
