"""Dates as the banks write them, read in Costa Rica time (UTC-6, no daylight saving)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .text import fold

# The one Costa Rica time of the app (parsing, pages, exports, schedules, the demo): UTC-6
# without daylight saving since 1992, so a fixed offset is exact, needs no tzdata, and is
# much cheaper than zoneinfo in a loop.
COSTA_RICA = timezone(timedelta(hours=-6), "America/Costa_Rica")

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "ene enero jan january",
            "feb febrero february",
            "mar marzo march",
            "abr abril apr april",
            "may mayo",
            "jun junio june",
            "jul julio july",
            "ago agosto aug august",
            "sep sept set septiembre setiembre september",
            "oct octubre october",
            "nov noviembre november",
            "dic diciembre dec december",
        ),
        start=1,
    )
    for name in names.split()
}

# Between the date and the time: "Sep 4, 2026 , 12:20", "22 jun 2026 / 16:15",
# "20-07-2026 a las 14:50:00 horas", "Jul 20, 2026 at 2:50 PM".
_TIME = (
    r"(?:\s*[,/-]?\s*(?:(?:a\s+las|a\s+la|at|hora:?)\s+)?"
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\s*(?P<ap>[ap])\.?\s?m\b\.?)?)?"
)
_FLAGS = re.IGNORECASE | re.ASCII
_PATTERNS = (
    # Mar 16, 2026, 08:27 (BAC; English or Spanish month)
    re.compile(
        r"\b(?P<mon>[a-z]{3,10})\.?\s+(?P<d>\d{1,2})(?:\s*,\s*|\s+)(?P<y>\d{4})\b" + _TIME, _FLAGS
    ),
    # 22 jun 2026 / 16:15 (Promerica); 20 de julio de 2026 14:50 (Outlook forwards)
    re.compile(
        r"\b(?P<d>\d{1,2})(?:\s+de)?\s+(?P<mon>[a-z]{3,10})\.?(?:\s+del?)?\s+(?P<y>\d{4})\b"
        + _TIME,
        _FLAGS,
    ),
    # 27/03/2026 a las 12:39 PM, 2/6/2026, 20-07-2026, 09 - 05 - 2026 (day first, as in
    # Costa Rica)
    re.compile(r"\b(?P<d>\d{1,2}) ?[/-] ?(?P<m>\d{1,2}) ?[/-] ?(?P<y>\d{4})\b" + _TIME, _FLAGS),
)


def parse_datetime(text: str) -> datetime | None:
    """The earliest date (with its time when given) in a text, in Costa Rica time."""
    folded = fold(text).strip()
    for pattern in _PATTERNS:  # most values start with their date: try that first
        match = pattern.match(folded)
        when = _build(match) if match else None
        if when is not None:
            return when
    best: tuple[int, datetime] | None = None
    for pattern in _PATTERNS:
        for match in pattern.finditer(folded):
            when = _build(match)
            if when is not None:
                if best is None or match.start() < best[0]:
                    best = (match.start(), when)
                break
    return best[1] if best else None


def _build(match: re.Match[str]) -> datetime | None:
    groups = match.groupdict()
    if groups.get("mon") is not None:
        month = MONTHS.get(groups["mon"].lower())
        if month is None:
            return None
    else:
        month = int(groups["m"])
    hour = int(groups["H"] or 0)
    ampm = (groups["ap"] or "").lower()
    if ampm and 0 <= hour <= 12:
        # "0:07 p.m." is seven past noon: some clocks write 12 as 0.
        hour = hour % 12 + (12 if ampm == "p" else 0)
    year = int(groups["y"])
    if not 2000 <= year <= 2099:
        return None
    try:
        return datetime(
            year,
            month,
            int(groups["d"]),
            hour,
            int(groups["M"] or 0),
            int(groups["S"] or 0),
            tzinfo=COSTA_RICA,
        )
    except ValueError:
        return None


def to_costa_rica(when: datetime | None) -> datetime | None:
    """An aware datetime moved to Costa Rica time (the Date header fallback)."""
    if when is None:
        return None
    try:
        return when.astimezone(COSTA_RICA)
    except (OverflowError, ValueError):
        return None
