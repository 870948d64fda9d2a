"""Monthly bar charts as plain geometry, so the template can draw them as inline SVG."""

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_decimal

from ..formatting import LOCALE, SYMBOLS, money
from ..parsing.dates import COSTA_RICA

MONTHS = 12
# viewBox units; the SVG scales to the card's width.
WIDTH, HEIGHT = 720, 210
LEFT, RIGHT, TOP, BOTTOM = 76, 8, 22, 40
CURRENCY_NAMES = {"CRC": "colones", "USD": "dólares"}


@dataclass
class Bar:
    key: str  # "YYYY-MM"
    label: str  # "mar"
    long_label: str  # "marzo 2025"
    cents: int
    count: int
    x: float = 0
    y: float = 0
    width: float = 0
    height: float = 0
    value_label: str = ""
    year_label: str = ""  # under the first bar and every January, so months are unambiguous
    selected: bool = False

    @property
    def center(self) -> float:
        return self.x + self.width / 2

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cents).scaleb(-2)


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class Chart:
    currency: str
    bars: list[Bar]
    ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM

    @property
    def name(self) -> str:
        return CURRENCY_NAMES.get(self.currency, self.currency)

    @property
    def description(self) -> str:
        """One sentence for screen readers: the period, the total and the busiest month."""
        peak = max(self.bars, key=lambda bar: bar.cents)
        total = Decimal(sum(bar.cents for bar in self.bars)).scaleb(-2)
        return (
            f"Salidas en {self.name} por mes, de {self.bars[0].long_label} a "
            f"{self.bars[-1].long_label}: {money(total, self.currency)} en total; el mes "
            f"con más salidas fue {peak.long_label} con {money(peak.amount, self.currency)}."
        )


def last_months(now: datetime, count: int = MONTHS) -> list[date]:
    """The first day of each of the last `count` Costa Rica months, oldest first."""
    local = now.astimezone(COSTA_RICA)
    index = local.year * 12 + local.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 1)]


def month_name(month: date) -> str:
    """The month as people say it, e.g. "marzo 2025"."""
    return format_date(month, "LLLL y", locale=LOCALE)


def window(months: list[date]) -> tuple[datetime, datetime]:
    """The instants where the first month starts and the month after the last one starts."""
    last = months[-1]
    end = date(last.year + last.month // 12, last.month % 12 + 1, 1)
    return (
        datetime(months[0].year, months[0].month, 1, tzinfo=COSTA_RICA),
        datetime(end.year, end.month, 1, tzinfo=COSTA_RICA),
    )


def compact(cents: int, currency: str) -> str:
    """A short amount for axis and bar labels: "₡56,8 mil", "$1,2 M"."""
    units = Decimal(cents).scaleb(-2)
    symbol = SYMBOLS.get(currency, currency + " ")
    for size, suffix in ((Decimal(10) ** 6, " M"), (Decimal(1000), " mil")):
        if units >= size:
            scaled = units / size
            # Three significant digits at most, so a label fits over its bar.
            pattern = "#,##0" if scaled >= 100 else "#,##0.#"
            return f"{symbol}{format_decimal(scaled, pattern, locale=LOCALE)}{suffix}"
    return f"{symbol}{format_decimal(units, '#,##0', locale=LOCALE)}"


def nice_step(maximum: int, ticks: int = 4) -> int:
    """A round axis step in cents (1, 2 or 5 × 10ⁿ) so about `ticks` steps cover the maximum."""
    raw = max(maximum / ticks, 100)  # whole units: "₡0, ₡1, ₡2", never fractions
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def bar_chart(
    currency: str,
    months: list[date],
    totals: dict[str, tuple[int, int]],
    selected: str | None = None,
) -> Chart:
    """Lay out one bar per month; `totals` maps "YYYY-MM" to (cents, count)."""
    bars = []
    for month in months:
        key = f"{month:%Y-%m}"
        cents, count = totals.get(key, (0, 0))
        bars.append(
            Bar(
                key,
                format_date(month, "MMM", locale=LOCALE),
                month_name(month),
                cents,
                count,
                selected=key == selected,
            )
        )
    chart = Chart(currency, bars)
    highest = max(bar.cents for bar in bars)
    step = nice_step(highest)
    top = step * max(1, math.ceil(highest / step))
    plot_height = chart.baseline - TOP
    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    for i, bar in enumerate(bars):
        bar.width = slot * 0.6
        bar.x = LEFT + i * slot + (slot - bar.width) / 2
        bar.height = plot_height * bar.cents / top
        bar.y = chart.baseline - bar.height
        bar.value_label = compact(bar.cents, currency) if bar.cents else ""
        if i == 0 or bar.key.endswith("-01"):
            bar.year_label = bar.key[:4]
    chart.ticks = [
        Tick(chart.baseline - plot_height * value / top, compact(value, currency))
        for value in range(0, top + 1, step)
    ]
    return chart
