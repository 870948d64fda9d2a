"""Queries behind the expenses pages: the filtered list, totals, monthly sums, month choices."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Expense
from ..parsing.dates import COSTA_RICA
from . import chart
from .filters import CURRENCIES, Filters, conditions


@dataclass
class CurrencyTotals:
    currency: str
    out_cents: int = 0
    in_cents: int = 0
    count: int = 0

    @property
    def money_out(self) -> Decimal:
        return Decimal(self.out_cents).scaleb(-2)

    @property
    def money_in(self) -> Decimal:
        return Decimal(self.in_cents).scaleb(-2)


def expense_select(filters: Filters, user_id: int):
    """The user's expenses matching the filters, newest first."""
    return (
        db.select(Expense)
        .where(*conditions(filters, user_id))
        # Every row shows its account: load it in the same query, not one query per row.
        .options(joinedload(Expense.email_account))
        .order_by(Expense.occurred_at.desc(), Expense.id.desc())
    )


def totals(filters: Filters, user_id: int) -> list[CurrencyTotals]:
    """Money out and money in per currency; colones and dollars are never added together."""
    rows = db.session.execute(
        db.select(Expense.currency, Expense.direction, func.sum(Expense.amount_cents), func.count())
        .where(*conditions(filters, user_id))
        .group_by(Expense.currency, Expense.direction)
    ).all()
    by_currency: dict[str, CurrencyTotals] = {}
    for currency, direction, cents, count in rows:
        entry = by_currency.setdefault(currency, CurrencyTotals(currency))
        # PostgreSQL sums BIGINT as NUMERIC (a Decimal); SQLite as int.
        setattr(entry, f"{direction}_cents", int(cents))
        entry.count += count
    return sorted(by_currency.values(), key=lambda t: (t.currency not in CURRENCIES, t.currency))


def monthly_charts(filters: Filters, user_id: int, now: datetime) -> list[chart.Chart]:
    """Money out per currency for each of the last 12 months, one chart per currency.

    The chart keeps every filter but month and direction: it is always money out, and it
    always spans the year so the selected month is seen against the others.
    """
    months = chart.last_months(now)
    start, end = chart.window(months)
    bucket = _month_bucket(now)
    rows = db.session.execute(
        db.select(Expense.currency, bucket, func.sum(Expense.amount_cents), func.count())
        .where(
            *conditions(replace(filters, month=None, direction=None), user_id),
            Expense.direction == "out",
            Expense.occurred_at >= start,
            Expense.occurred_at < end,
        )
        .group_by(Expense.currency, bucket)
    ).all()
    sums: dict[str, dict[str, tuple[int, int]]] = {}
    for currency, month, cents, count in rows:
        sums.setdefault(currency, {})[month] = (int(cents), count)
    return [
        chart.bar_chart(currency, months, sums[currency], filters.month)
        for currency in sorted(sums, key=lambda c: (c not in CURRENCIES, c))
    ]


def _month_bucket(now: datetime):
    """SQL for an expense's "YYYY-MM" in Costa Rica time.

    Grouping in SQL returns at most 24 rows however many expenses a year holds, instead of
    shipping every row to Python. The expression depends on the dialect: PostgreSQL converts
    with its time-zone database; SQLite has none, so it shifts by Costa Rica's offset, which
    is exact because the country has kept UTC-6 without daylight saving time since 1992.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        local = func.timezone(COSTA_RICA.tzname(None), Expense.occurred_at)
        return func.to_char(local, "YYYY-MM")
    minutes = int(now.astimezone(COSTA_RICA).utcoffset().total_seconds() // 60)
    return func.strftime("%Y-%m", Expense.occurred_at, f"{minutes:+d} minutes")


def month_options(user_id: int, limit: int = 120) -> list[tuple[str, str]]:
    """The months, newest first, from the user's first expense to the latest one."""
    first, last = db.session.execute(
        db.select(func.min(Expense.occurred_at), func.max(Expense.occurred_at)).where(
            Expense.user_id == user_id, Expense.deleted_at.is_(None)
        )
    ).one()
    if first is None:
        return []
    count = min(limit, _month_index(last) - _month_index(first) + 1)
    return [(f"{m:%Y-%m}", chart.month_name(m)) for m in reversed(chart.last_months(last, count))]


def _month_index(value: datetime) -> int:
    local = value.astimezone(COSTA_RICA)
    return local.year * 12 + local.month
