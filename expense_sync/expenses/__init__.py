"""Expenses: list with filters, totals per currency, monthly chart, exports, manual entries."""

from flask import Blueprint

# No url_prefix: "/expenses.csv" is a sibling of "/expenses", which a prefix cannot express.
bp = Blueprint("expenses", __name__)

from . import manage, views  # noqa: E402,F401  (routes register on bp)
