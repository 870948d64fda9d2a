"""The mix of a real mailbox, drawn deterministically from a seed, rendered to bytes."""

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from ..parsing.registry import load_banks
from . import bac, bcr, bn, catalog, davibank, other, popular, promerica
from .base import CR_TZ, Card, Ctx, Mail, Picker
from .mime import address, assemble, header, rfc2822_date

_BANK_WEIGHTS = {
    "bac": 4.0,
    "davibank": 3.5,
    "promerica": 2.5,
    "bn": 3.0,
    "bcr": 2.0,
    "popular": 1.5,
}
# Card activity follows the day: little at night, peaks at lunch and after work.
_HOUR_WEIGHTS = "1 .6 .4 .3 .3 .6 1.5 3 4 4.5 5 5.5 7 6.5 5 5 5.5 6 7 7 6 4.5 3 2"
_HOURS = Picker([(float(weight), hour) for hour, weight in enumerate(_HOUR_WEIGHTS.split())])

Template = Callable[[Ctx, datetime], Mail]


@dataclass(frozen=True)
class Generated:
    """One generated message and the outcome the parser must give for it."""

    raw: bytes  # a complete RFC 5322 message
    expected: dict  # a line of expected.jsonl without "file" and "message_id"
    message_id: str
    variant: str = ""  # which template made it, e.g. "bac-purchase-html-base64"


def _forward(fallback: Template, own: bool, ctx: Ctx, when: datetime) -> Mail:
    # Forward a notification already in the mailbox when there is one, so both copies meet
    # in the ingest; otherwise one that arrived elsewhere.
    original = ctx.rng.choice(ctx.recent) if ctx.recent else fallback(ctx, when)
    return other.forward(ctx, when, original, own)


def _mix(weighted: list[tuple[float, Template]], purchase: Template) -> Picker[Template]:
    # Every mailbox also gets forwards (by its owner and by others) and personal mail.
    return Picker(
        weighted
        + [
            (1.2, partial(_forward, purchase, True)),
            (0.4, partial(_forward, purchase, False)),
            (1.0, other.personal),
        ]
    )


# Proportions of a year of one person's notifications; 10 to 15 % are not transactions.
_MIXES: dict[str, Picker[Template]] = {
    "bac": _mix(
        [
            (64.0, bac.purchase),
            (2.5, partial(bac.purchase, kind="refund")),
            (6.0, bac.transfer_out),
            (7.0, bac.sinpe_in),
            (2.0, bac.withdrawal),
            (2.0, partial(bac.purchase, kind="check")),
            (1.0, bac.statement),
            (5.5, bac.marketing),
        ],
        bac.purchase,
    ),
    "davibank": _mix(
        [
            (82.0, davibank.purchase),
            (4.0, partial(davibank.purchase, outcome="declined")),
            (1.5, partial(davibank.purchase, outcome="check")),
            (3.0, davibank.preapproved),
            (2.0, davibank.statement),
            (0.5, davibank.rebrand),
        ],
        davibank.purchase,
    ),
    "promerica": _mix(
        [
            (80.0, promerica.purchase),
            (5.0, promerica.own_card_payment),
            (2.5, promerica.pin_change),
            (2.0, promerica.statement),
            (1.5, promerica.promotion),
            (1.0, partial(promerica.purchase, check=True)),
        ],
        promerica.purchase,
    ),
    "bn": _mix(
        [
            (88.0, bn.purchase),
            (3.0, bn.offer),
            (4.0, bn.promotion),
        ],
        bn.purchase,
    ),
    "bcr": _mix(
        [
            (70.0, bcr.purchase),
            (4.0, partial(bcr.purchase, outcome="declined")),
            (10.0, bcr.sinpe_movil),
            (5.0, bcr.transfer),
            (2.0, bcr.statement),
        ],
        bcr.purchase,
    ),
    "popular": _mix(
        [
            (50.0, popular.debit),
            (32.0, popular.credit),
            (2.5, popular.pin_change),
        ],
        popular.debit,
    ),
}
# Cards of the banks added after the first three. They are drawn after everything those
# three draw, and only for a mailbox that has them, so a seed still gives the mailboxes it
# gave before for the first three banks (the demo's Maildirs already on disk, bench runs).
_LATER_CARDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "bn": (("VISA",), ("MASTERCARD", "VISA"), ("VISA", "MASTERCARD")),
    "bcr": (("VISA",), ("MASTERCARD",), ("VISA", "MASTERCARD")),
    # Popular's debit card first, then the credit card its sentence names.
    "popular": (("BP", "VISA INTERNACIONAL"), ("BP", "MASTERCARD INTERNACIONAL")),
}
# The banks the demo writes: the registry's banks that have a mix above, in the mixes' order,
# not the registry's: a seed picks banks by their place here, so a new mix goes last.
BANKS: tuple[str, ...] = tuple(code for code in _MIXES if code in load_banks())


def _new_ctx(
    rng: random.Random, to_address: str, start: datetime, end: datetime, banks: Sequence[str]
) -> Ctx:
    given, surnames, short_name = rng.choice(catalog.HOLDERS)

    def cards(brands: Sequence[str]) -> list[Card]:
        return [Card(brand, f"{rng.randrange(10_000):04d}") for brand in brands]

    def iban() -> str:
        return f"CR{rng.randrange(10, 100)}01{'X' * 12}{rng.randrange(10_000):04d}"

    ctx = Ctx(
        rng=rng,
        given=given,
        surnames=surnames,
        short_name=short_name,
        to_address=to_address,
        cards={
            "bac": cards(rng.choice((("VISA", "AMEX"), ("MASTER", "VISA"), ("VISA",)))),
            "davibank": cards(rng.choice((("MC", "VISA"), ("VISA",), ("MC",)))),
            "promerica": cards(rng.choice((("VISA",), ("MASTER", "VISA")))),
        },
        crc_iban=iban(),
        usd_iban=iban(),
        # The oldest third of the window predates the Scotiabank to DAVIbank rebrand.
        scotiabank_until=start + (end - start) * 0.3,
    )
    for bank, choices in _LATER_CARDS.items():
        if bank in banks:
            ctx.cards[bank] = cards(rng.choice(choices))
    return ctx


def _timeline(rng: random.Random, count: int, start: datetime, end: datetime) -> list[datetime]:
    """Sorted whole-second moments in [start, end], denser in the hours people shop."""
    first, last = start.timestamp(), end.timestamp()
    stamps: list[float] = []
    if last - first < 3 * 86_400:
        stamps = [float(rng.randint(int(first), int(last))) for _ in range(count)]
    else:
        midnight = start.astimezone(CR_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        base, days = midnight.timestamp(), (end - midnight).days + 1
        while len(stamps) < count:
            moment = base + rng.randrange(days) * 86_400 + _HOURS(rng) * 3_600
            moment += rng.randrange(3_600)
            if first <= moment <= last:
                stamps.append(moment)
    stamps.sort()
    return [datetime.fromtimestamp(stamp, CR_TZ) for stamp in stamps]


def _aware(moment: datetime) -> datetime:
    # Naive datetimes are read as Costa Rica wall time, the zone of every notice.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=CR_TZ)
    return moment.astimezone(CR_TZ)


def generate_notifications(
    count: int,
    *,
    seed: int = 0,
    banks: Sequence[str] = BANKS,
    start: datetime | None = None,
    end: datetime | None = None,
    to_address: str = "demo@example.cr",
) -> Iterator[Generated]:
    """Yield `count` realistic notifications in date order, the same ones for the same seed.

    `banks` are codes of BANKS: the parser registry's banks that have a demo writer (a mix
    in _MIXES). Some banks the app reads have none yet (MUCAP, Grupo Mutual and Multimoney,
    known from few or no public samples); asking for one of them is refused.

    Without `end` the window ends at the current minute, so only calls with explicit
    `start` and `end` are reproducible across minutes.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    unknown = sorted(set(banks) - set(BANKS))
    if unknown or not banks:
        raise ValueError(f"unknown banks {unknown}; choose among {BANKS}")
    end = _aware(end) if end else datetime.now(CR_TZ).replace(second=0, microsecond=0)
    start = _aware(start) if start else end - timedelta(days=365)
    if start >= end:
        raise ValueError("start must be before end")
    return _generate(count, seed, tuple(banks), start, end, to_address)


def _generate(
    count: int,
    seed: int,
    banks: tuple[str, ...],
    start: datetime,
    end: datetime,
    to_address: str,
) -> Iterator[Generated]:
    rng = random.Random(seed)
    ctx = _new_ctx(rng, to_address, start, end, banks)
    pick_bank = Picker([(_BANK_WEIGHTS[bank], bank) for bank in banks])
    to_line = header("To", address(ctx.short_name, to_address))
    # Message-IDs look like Python's make_msgid; the random-looking part is an affine
    # permutation of a counter, so the IDs of one run are unique without remembering them.
    pid, multiplier, salt = (
        rng.randrange(1_000, 60_000),
        rng.getrandbits(64) | 1,
        rng.getrandbits(64),
    )
    for number, when in enumerate(_timeline(rng, count, start, end)):
        mail = _MIXES[pick_bank(rng)](rng)(ctx, when)
        display, addr = mail.sender
        unique = (number * multiplier + salt) % 2**64
        message_id = (
            f"<{int(mail.sent_at.timestamp() * 100) + rng.randrange(100)}.{pid}.{unique}"
            f"@{addr.rsplit('@', 1)[1].lower()}>"
        )
        envelope = (
            header("From", address(display, addr))
            + to_line
            + header("Subject", mail.subject)
            + f"Date: {rfc2822_date(mail.sent_at)}\nMessage-ID: {message_id}\n"
        )
        boundary = f"==============={rng.getrandbits(63):019d}==" if len(mail.parts) > 1 else ""
        if mail.expected["status"] == "transaction" and not mail.variant.startswith("forward"):
            ctx.recent.append(mail)
        yield Generated(
            assemble(envelope, mail.parts, boundary), mail.expected, message_id, mail.variant
        )
