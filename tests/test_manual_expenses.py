"""Expenses the user states or corrects: cash by hand, corrections that keep the mail's word,
deletion, and exports (CSV, Excel, JSON) that say what was corrected."""

import csv
import io
import json
import unicodedata
from datetime import datetime
from decimal import Decimal

import pytest
from helpers import PURCHASE, csrf_token, raw, store, sync_row
from openpyxl import load_workbook

from expense_sync.expenses.forms import read_amount
from expense_sync.extensions import db
from expense_sync.models import Expense, SyncSessionAccount
from expense_sync.parsing.dates import COSTA_RICA as CR


@pytest.fixture
def ana(app, auth):
    user_id = auth.create()
    auth.login()
    return user_id


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/expenses")} | data)


def cash(**changes) -> dict:
    return {
        "occurred_at": "2026-11-28T07:45",
        "amount": "2.500,00",
        "currency": "CRC",
        "kind": "purchase",
        "bank": "cash",
        "merchant": "Feria del agricultor",
        "category": "Supermercado",
        "note": "Verduras de la semana",
    } | changes


def imported(app, user_id: int) -> int:
    """An expense the sync read from a real BAC notice; its id."""
    with app.app_context():
        store(sync_row(user_id), raw(PURCHASE))
        return db.session.scalars(db.select(Expense.id).filter_by(user_id=user_id)).one()


def read_again(app, expense_id: int):
    """Store the expense's mail again for its account, as a re-read of the folder does."""
    with app.app_context():
        expense = db.session.get(Expense, expense_id)
        row = db.session.scalars(
            db.select(SyncSessionAccount).filter_by(email_account_id=expense.email_account_id)
        ).one()
        row.email_account.reread_until_uid = 1
        return store(row, raw(PURCHASE))


def exported_csv(client) -> list[dict]:
    body = client.get("/expenses.csv").data.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("2.500,00", "2500.00"),
        ("2500.00", "2500.00"),
        ("₡ 12 500,50", "12500.50"),
        ("$19.99", "19.99"),
        ("12,5", "12.5"),
        ("1,234", "1234.00"),
        ("  7 ", "7.00"),
    ],
)
def test_amounts_are_read_as_people_type_them(typed, amount):
    assert read_amount(typed) == Decimal(amount)


@pytest.mark.parametrize("typed", ["", "abc", "1.2.3,4", "12,345.678", "--5"])
def test_unreadable_amounts_are_refused(typed):
    assert read_amount(typed) is None


def test_a_cash_expense_is_listed_totalled_and_exported(app, client, ana):
    response = post(client, "/expenses/new", **cash())
    assert response.status_code == 302
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    for text in (
        "Feria del agricultor",
        "₡2500,00",
        "Efectivo",
        "Supermercado",
        "Verduras de la semana",
        "Agregado a mano",
        "28 de noviembre de 2026, 07:45",
    ):
        assert text.replace("₡2500,00", "₡2 500,00").replace(" ", "\u00a0") in detail.replace(
            " ", "\u00a0"
        ), text
    listed = client.get("/expenses?bank=cash").get_data(as_text=True)
    assert "Feria del agricultor" in listed and "A mano" in listed
    [row] = exported_csv(client)
    assert (row["banco"], row["monto"], row["origen"], row["cuenta"], row["categoria"]) == (
        "Efectivo",
        "2500.00",
        "Agregado a mano",
        "",
        "Supermercado",
    )
    with app.app_context():
        expense = db.session.scalars(db.select(Expense)).one()
        assert expense.occurred_at == datetime(2026, 11, 28, 7, 45, tzinfo=CR)
        assert (expense.email_account_id, expense.message_key, expense.direction) == (
            None,
            None,
            "out",
        )


def test_a_form_with_errors_marks_its_fields(app, client, ana):
    response = post(client, "/expenses/new", **cash(amount="0", occurred_at=""))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="error-summary"' in html
    assert "El monto debe ser mayor que cero." in html and "Este campo es obligatorio." in html
    assert 'href="#amount"' in html and 'href="#occurred_at"' in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Expense)) == 0


def test_correcting_an_imported_expense_keeps_what_the_mail_said(app, client, ana):
    expense_id = imported(app, ana)
    # The amount of an expense read from mail is the bank's: the form does not change it.
    post(
        client,
        f"/expenses/{expense_id}/edit",
        merchant="Automercado Los Yoses",
        category="Supermercado",
        note="Compra del mes",
        amount="1",
    )
    html = client.get(f"/expenses/{expense_id}").get_data(as_text=True)
    assert "Automercado Los Yoses" in html and 'id="original-merchant"' in html
    assert "El correo decía: AUTOMERCADO LOS YOSES" in html
    [row] = exported_csv(client)
    assert (row["comercio"], row["corregido"], row["comercio_original"], row["monto"]) == (
        "Automercado Los Yoses",
        "comercio",
        "AUTOMERCADO LOS YOSES",
        "12500.00",
    )
    lines = (
        app.test_cli_runner()
        .invoke(args=["export-expenses", "--user", "ana@example.cr", "--format", "json"])
        .output
    )
    record = json.loads(lines)
    assert (record["comercio"], record["corregido"], record["origen"]) == (
        "Automercado Los Yoses",
        ["merchant"],
        "mail",
    )
    # Back to the mail's own word: nothing is corrected any more.
    post(
        client,
        f"/expenses/{expense_id}/edit",
        merchant="AUTOMERCADO LOS YOSES",
        category="Supermercado",
    )
    assert exported_csv(client)[0]["corregido"] == ""
    assert 'id="original-merchant"' not in client.get(f"/expenses/{expense_id}").get_data(
        as_text=True
    )


def test_a_deleted_imported_expense_does_not_come_back(app, client, ana):
    expense_id = imported(app, ana)
    post(client, f"/expenses/{expense_id}/delete")
    assert client.get(f"/expenses/{expense_id}").status_code == 404
    assert exported_csv(client) == []
    assert read_again(app, expense_id).detected == 0
    assert "AUTOMERCADO" not in client.get("/expenses").get_data(as_text=True)


def test_a_cash_expense_is_edited_whole_and_deleted(app, client, ana):
    location = post(client, "/expenses/new", **cash()).headers["Location"]
    expense_id = int(location.rsplit("/", 1)[1])
    post(
        client,
        f"/expenses/{expense_id}/edit",
        **cash(amount="19.99", currency="USD", kind="refund"),
    )
    with app.app_context():
        expense = db.session.get(Expense, expense_id)
        assert (expense.amount_cents, expense.currency, expense.direction) == (1999, "USD", "in")
        assert expense.original_values is None  # the user's own figures are no correction
    post(client, f"/expenses/{expense_id}/delete")
    with app.app_context():
        assert db.session.get(Expense, expense_id) is None


def test_excel_export_has_typed_numbers_dates_and_no_formulas(app, client, ana):
    post(client, "/expenses/new", **cash(merchant='=HYPERLINK("http://x")', amount="1234,56"))
    response = client.get("/expenses.xlsx")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(response.data)).active
    header, row = [[cell.value for cell in r] for r in sheet.iter_rows(max_row=2)]
    values = dict(zip(header, row, strict=True))
    assert values["Monto"] == pytest.approx(1234.56) and isinstance(values["Monto"], float)
    assert values["Fecha"] == datetime(2026, 11, 28, 7, 45)
    assert values["Comercio o detalle"] == '\'=HYPERLINK("http://x")'
    assert (values["Tipo"], values["Banco o medio de pago"]) == ("Compra", "Efectivo")


def test_another_users_expense_cannot_be_changed(app, client, ana, auth):
    expense_id = imported(app, ana)
    auth.logout()
    auth.create("beto@example.cr")
    auth.login("beto@example.cr")
    assert client.get(f"/expenses/{expense_id}/edit").status_code == 404
    assert post(client, f"/expenses/{expense_id}/delete").status_code == 404
    assert post(client, f"/expenses/{expense_id}/edit", merchant="x").status_code == 404
    with app.app_context():
        expense = db.session.get(Expense, expense_id)
        assert (expense.deleted_at, expense.merchant) == (None, "AUTOMERCADO LOS YOSES")


@pytest.mark.parametrize(
    "merchant",
    ["X;=1+1", "＝1+1", "SODA, @SUM(A1)", "A\t+1", "\t=1", "Tienda; ; -2+3", "＋HYPERLINK()"],
)
def test_no_cell_starts_a_formula_whichever_separator_a_spreadsheet_uses(client, ana, merchant):
    post(client, "/expenses/new", **cash(merchant=merchant))
    body = client.get("/expenses.csv").data.decode("utf-8-sig")
    # Read as a comma CSV, then as a Spanish-locale Excel reads it (";"), then tab-split.
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(body), delimiter=delimiter):
            for cell in row:
                first = unicodedata.normalize("NFKC", cell.lstrip(" ")[:1])
                assert first not in ("=", "+", "@") and not cell.startswith("-"), (delimiter, cell)
    sheet = load_workbook(io.BytesIO(client.get("/expenses.xlsx").data)).active
    cell = sheet[2][7]  # the merchant: text, never a formula, in Excel too
    assert cell.data_type == "s" and merchant.strip() in cell.value
    assert unicodedata.normalize("NFKC", cell.value[:1]) not in ("=", "+", "@", "-")


@pytest.mark.parametrize(
    ("typed", "amount"), [("12\u00a0500,00", "12500.00"), ("12\u202f500,00", "12500.00")]
)
def test_no_break_spaces_group_thousands(typed, amount):
    assert read_amount(typed) == Decimal(amount)


@pytest.mark.parametrize("typed", ["0,001", "99999999999999999999,5"])
def test_amounts_no_one_writes_are_refused(typed):
    assert read_amount(typed) is None


def test_an_annotated_expense_survives_a_parser_that_no_longer_reads_its_mail(app, client, ana):
    from expense_sync.ingest import reconcile
    from expense_sync.parsing import parse_message as parse

    expense_id = imported(app, ana)
    post(
        client,
        f"/expenses/{expense_id}/edit",
        merchant="AUTOMERCADO LOS YOSES",
        category="Supermercado",
    )
    with app.app_context():
        expense = db.session.get(Expense, expense_id)
        # What a parser that reads no transaction in it would say of the same mail.
        outcome = parse(b"From: notificacion@notificacionesbaccr.com\r\nSubject: x\r\n\r\nx\r\n")
        reconcile(expense.email_account, [(1, expense.message_key, outcome)])
        db.session.commit()
        assert db.session.get(Expense, expense_id) is not None
