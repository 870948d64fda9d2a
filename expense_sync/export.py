"""Exporting expenses as CSV (spreadsheet-safe) or JSON lines."""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from .models import Expense

TIMEZONE = ZoneInfo("America/Costa_Rica")
COLUMNS = ["fecha", "banco", "cuenta", "tipo", "direccion", "monto", "moneda", "comercio",
           "tarjeta", "autorizacion", "referencia"]
# A cell starting with one of these runs as a formula in Excel, LibreOffice and Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def expense_record(expense: Expense) -> dict:
    """One expense as plain values (amount as an exact decimal string)."""
    return {
        "fecha": expense.occurred_at.astimezone(TIMEZONE).isoformat(),
        "banco": expense.bank,
        "cuenta": expense.email_account.address,
        "tipo": expense.kind,
        "direccion": expense.direction,
        "monto": f"{expense.amount:.2f}",
        "moneda": expense.currency,
        "comercio": expense.merchant or "",
        "tarjeta": expense.card_last4 or "",
        "autorizacion": expense.authorization or "",
        "referencia": expense.reference or "",
    }


def spreadsheet_safe(value: str) -> str:
    """Neutralise text a spreadsheet would run as a formula (merchant names come from email)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def csv_chunks(expenses: Iterable[Expense]) -> Iterator[str]:
    """UTF-8 CSV with a BOM, so spreadsheets show accents right; yields as it goes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for expense in expenses:
        record = expense_record(expense)
        writer.writerow([record[c] if c == "monto" else spreadsheet_safe(record[c])
                         for c in COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_lines(expenses: Iterable[Expense]) -> Iterator[str]:
    for expense in expenses:
        yield json.dumps(expense_record(expense), ensure_ascii=False) + "\n"
