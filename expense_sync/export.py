"""Exporting expenses: CSV (spreadsheet-safe), Excel (.xlsx) or JSON lines.

CSV and Excel speak to people: Spanish labels, dates in Costa Rica time. JSON lines speak
to programs: codes as stored. All three carry the user's corrections and say which
values were corrected, keeping what the mail said.
"""

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator

from openpyxl import Workbook

from .formatting import kind_label
from .models import ORIGINS, Expense
from .parsing.dates import COSTA_RICA

COLUMNS = [
    "fecha",
    "banco",
    "cuenta",
    "tipo",
    "direccion",
    "monto",
    "moneda",
    "comercio",
    "categoria",
    "nota",
    "tarjeta",
    "autorizacion",
    "referencia",
    "origen",
    "corregido",
    "comercio_original",
]
HEADINGS = {
    "fecha": "Fecha",
    "banco": "Banco o medio de pago",
    "cuenta": "Cuenta de correo",
    "tipo": "Tipo",
    "direccion": "Dirección",
    "monto": "Monto",
    "moneda": "Moneda",
    "comercio": "Comercio o detalle",
    "categoria": "Categoría",
    "nota": "Nota",
    "tarjeta": "Tarjeta",
    "autorizacion": "Autorización",
    "referencia": "Referencia",
    "origen": "Origen",
    "corregido": "Corregido",
    "comercio_original": "Comercio según el correo",
}
DIRECTION_LABELS = {"out": "Salida", "in": "Entrada"}
CORRECTED_LABELS = {"merchant": "comercio"}
# A cell starting with one of these runs as a formula in Excel, LibreOffice and Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_SEPARATORS = re.compile(r"([;,\t\r\n])")


def expense_record(expense: Expense) -> dict:
    """One expense as stored, for programs (amount as an exact decimal string)."""
    original = expense.original_values or {}
    return {
        "fecha": expense.occurred_at.astimezone(COSTA_RICA).isoformat(),
        "banco": expense.bank,
        "cuenta": expense.email_account.address if expense.email_account else "",
        "tipo": expense.kind,
        "direccion": expense.direction,
        "monto": f"{expense.amount:.2f}",
        "moneda": expense.currency,
        "comercio": expense.merchant or "",
        "categoria": expense.category or "",
        "nota": expense.note or "",
        "tarjeta": expense.card_last4 or "",
        "autorizacion": expense.authorization or "",
        "referencia": expense.reference or "",
        "origen": expense.origin,
        "corregido": sorted(original),
        "comercio_original": original.get("merchant") or "",
    }


def labelled_record(expense: Expense) -> dict:
    """One expense as a person reads it: the codes turned into their Spanish names."""
    record = expense_record(expense)
    return record | {
        "banco": expense.bank_name,
        "tipo": kind_label(expense.kind),
        "direccion": DIRECTION_LABELS.get(expense.direction, expense.direction),
        "origen": ORIGINS.get(expense.origin, expense.origin),
        "corregido": ", ".join(CORRECTED_LABELS.get(name, name) for name in record["corregido"]),
    }


def formula_safe(value: str) -> str:
    """A cell that no spreadsheet runs as a formula: a leading "'" where one would start.

    Full-width signs ("＝1+1") count too: some spreadsheets normalise them (NFKC) first.
    """
    first = unicodedata.normalize("NFKC", value[:1])
    return "'" + value if first and first in FORMULA_PREFIXES else value


def spreadsheet_safe(value: str) -> str:
    """Neutralise text a spreadsheet would run as a formula (merchant names come from email).

    Also every piece a separator starts: a Spanish-locale Excel splits a comma CSV at ";",
    so "X;=1+1" would become a cell "=1+1" there.
    """
    if value.startswith(("\t", "\r")):
        return "'" + value
    parts = _SEPARATORS.split(value)
    for i in range(0, len(parts), 2):  # the even items are the pieces between separators
        piece = parts[i]
        body = piece.lstrip(" ") if i else piece
        parts[i] = piece[: len(piece) - len(body)] + formula_safe(body)
    return "".join(parts)


def csv_chunks(expenses: Iterable[Expense]) -> Iterator[str]:
    """UTF-8 CSV with a BOM, so spreadsheets show accents right; yields as it goes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for expense in expenses:
        record = labelled_record(expense)
        writer.writerow(
            [record[c] if c == "monto" else spreadsheet_safe(record[c]) for c in COLUMNS]
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_bytes(expenses: Iterable[Expense]) -> bytes:
    """An Excel workbook: real numbers and dates, so any locale's Excel opens it right.

    Cells are typed values, never formulas: openpyxl writes a string starting with "="
    as a formula, so text cells are neutralised like the CSV's.
    """
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Gastos")
    sheet.append([HEADINGS[c] for c in COLUMNS])
    for expense in expenses:
        record = labelled_record(expense)
        row = [formula_safe(str(record[c])) or None for c in COLUMNS]
        row[COLUMNS.index("fecha")] = expense.occurred_at.astimezone(COSTA_RICA).replace(
            tzinfo=None
        )
        row[COLUMNS.index("monto")] = expense.amount
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def json_lines(expenses: Iterable[Expense]) -> Iterator[str]:
    for expense in expenses:
        yield json.dumps(expense_record(expense), ensure_ascii=False) + "\n"
