"""The list's filters: read from the query string, validated, turned into SQL conditions."""

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from ..extensions import db
from ..formatting import KINDS
from ..models import CASH, CASH_NAME, Expense, SyncSession, bank_names
from ..parsing.dates import COSTA_RICA

CURRENCIES = {"CRC": "Colones (₡)", "USD": "Dólares ($)"}
DIRECTIONS = {"out": "Salidas", "in": "Entradas"}
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def payment_means() -> dict[str, str]:
    """How an expense was paid, as the list filters it: a bank, or cash typed by hand."""
    return bank_names() | {CASH: CASH_NAME}


@dataclass(frozen=True)
class Filters:
    bank: str | None = None
    account: int | None = None
    month: str | None = None  # "YYYY-MM" in Costa Rica time
    currency: str | None = None
    kind: str | None = None
    direction: str | None = None
    q: str | None = None  # part of the merchant's name
    sync: str | None = None  # the token of the sync that found the expenses

    def args(self, **changes) -> dict:
        """The filters set, as query-string arguments (for links that keep them)."""
        values = asdict(self) | changes
        return {key: value for key, value in values.items() if value not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.args())


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Keep the valid filters; a hand-edited or stale URL shows more, never an error page."""
    account = args.get("account", "")
    month = args.get("month", "")
    sync = args.get("sync", "")
    return Filters(
        bank=_choice(args.get("bank"), payment_means()),
        account=int(account) if account.isdigit() and len(account) < 10 else None,
        month=month if _MONTH.fullmatch(month) else None,
        currency=_choice(args.get("currency"), CURRENCIES),
        kind=_choice(args.get("kind"), KINDS),
        direction=_choice(args.get("direction"), DIRECTIONS),
        q=(args.get("q") or "").strip()[:100] or None,
        sync=sync if _TOKEN.fullmatch(sync) else None,
    )


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first instant of a Costa Rica month and of the next one."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=COSTA_RICA)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=COSTA_RICA)
    return start, end


def conditions(filters: Filters, user_id: int) -> list:
    """SQL conditions for the user's expenses that match the filters."""
    # A deleted expense read from mail is a tombstone (see records.delete): never listed.
    where = [Expense.user_id == user_id, Expense.deleted_at.is_(None)]
    for column, value in (
        (Expense.bank, filters.bank),
        (Expense.email_account_id, filters.account),
        (Expense.currency, filters.currency),
        (Expense.kind, filters.kind),
        (Expense.direction, filters.direction),
    ):
        if value is not None:
            where.append(column == value)
    if filters.month:
        start, end = month_bounds(filters.month)
        where += [Expense.occurred_at >= start, Expense.occurred_at < end]
    if filters.q:
        # autoescape: a "%" or "_" typed by the user is a character, not a wildcard.
        where.append(Expense.merchant.icontains(filters.q, autoescape=True))
    if filters.sync:
        where.append(
            Expense.sync_session_id
            == db.select(SyncSession.id)
            .where(SyncSession.token == filters.sync, SyncSession.user_id == user_id)
            .scalar_subquery()
        )
    return where


def _choice(value: str | None, allowed: Mapping[str, str]) -> str | None:
    return value if value in allowed else None
