"""The expenses pages: list, filters, pagination, totals, chart, CSV and Excel."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from expense_sync.expenses import chart, queries
from expense_sync.expenses.filters import Filters, parse_filters
from expense_sync.extensions import db
from expense_sync.formatting import money
from expense_sync.models import EmailAccount, Expense, SyncSession, UnreadableEmail
from expense_sync.parsing.dates import COSTA_RICA as CR

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
ESCAPED = {
    XSS[0]: "&lt;script&gt;alert(1)&lt;/script&gt;",
    XSS[1]: "&lt;img src=x onerror=alert(1)&gt;",
}


def cr(*args) -> datetime:
    """A Costa Rica wall-clock time (stored as UTC by the model)."""
    return datetime(*args, tzinfo=CR)


def account(user_id: int, bank="bac", address=None) -> EmailAccount:
    row = EmailAccount(
        user_id=user_id,
        bank=bank,
        source_kind="mbox",
        local_path="x.mbox",
        address=address or f"{uuid.uuid4().hex[:6]}@{bank}.example.cr",
    )
    db.session.add(row)
    db.session.flush()
    return row


def expense(acct: EmailAccount, merchant: str | None = "Automercado", **fields) -> Expense:
    values = {
        "kind": "purchase",
        "direction": "out",
        "amount_cents": 1_000_00,
        "currency": "CRC",
        "occurred_at": cr(2025, 3, 10, 12, 30),
    } | fields
    row = Expense(
        user_id=acct.user_id,
        email_account_id=acct.id,
        bank=acct.bank,
        message_key=f"<{uuid.uuid4().hex}@bank>",
        merchant=merchant,
        **values,
    )
    db.session.add(row)
    db.session.flush()
    return row


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-expense-id="(\d+)"', html)]


@pytest.fixture
def ana(app, auth):
    """A logged-in user; returns her id."""
    user_id = auth.create()
    auth.login()
    return user_id


@pytest.fixture
def other(auth):
    """Another user, not logged in."""
    return auth.create("beto@example.cr", "otra-contraseña-1")


@pytest.fixture
def sample(app, ana):
    """Six expenses across two banks, two currencies, kinds, directions and months."""
    with app.app_context():
        bac, pro = account(ana, "bac", "ana@bac.cr"), account(ana, "promerica", "ana@pro.cr")
        rows = {
            "Automercado": expense(bac, "Automercado", amount_cents=12_345_50),
            "Uber": expense(
                bac, "Uber", currency="USD", amount_cents=15_75, occurred_at=cr(2025, 3, 20, 8, 0)
            ),
            "Amazon": expense(
                pro,
                "Amazon",
                currency="USD",
                amount_cents=120_00,
                occurred_at=cr(2025, 2, 5, 10, 0),
            ),
            # 23:30 on 28 February in Costa Rica is already 1 March in UTC.
            "ATM Escazú": expense(
                bac,
                "ATM Escazú",
                kind="withdrawal",
                amount_cents=20_000_00,
                occurred_at=cr(2025, 2, 28, 23, 30),
            ),
            "Salario": expense(
                pro,
                "Salario",
                kind="transfer_in",
                direction="in",
                amount_cents=500_000_00,
                occurred_at=cr(2025, 3, 1, 0, 10),
            ),
            "Devolución Uber": expense(
                bac,
                "Devolución Uber",
                kind="refund",
                direction="in",
                currency="USD",
                amount_cents=15_75,
                occurred_at=cr(2025, 3, 21, 9, 0),
            ),
        }
        db.session.commit()
        return {
            "ids": {name: row.id for name, row in rows.items()},
            "bac": bac.id,
            "pro": pro.id,
            "user": ana,
        }


def test_pages_need_login(client, app):
    for path in ("/expenses", "/expenses.csv", "/expenses/unreadable", "/expenses/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_nav_links_the_expenses_page(client, ana):
    assert 'href="/expenses"' in client.get("/sync").get_data(as_text=True)


def test_list_is_newest_first_in_costa_rica_time_and_colones(client, sample):
    html = client.get("/expenses").get_data(as_text=True)
    ids = sample["ids"]
    assert row_ids(html) == [
        ids[n]
        for n in ("Devolución Uber", "Uber", "Automercado", "Salario", "ATM Escazú", "Amazon")
    ]
    assert "28 feb 2025, 23:30" in html  # not 1 March, the UTC date
    assert money(Decimal("12345.50"), "CRC") in html
    assert "+" + money(Decimal("15.75"), "USD") in html
    assert "6 movimientos" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("bank=bac", ["Devolución Uber", "Uber", "Automercado", "ATM Escazú"]),
        ("bank=promerica", ["Salario", "Amazon"]),
        ("account={pro}", ["Salario", "Amazon"]),
        ("month=2025-02", ["ATM Escazú", "Amazon"]),
        ("month=2025-03", ["Devolución Uber", "Uber", "Automercado", "Salario"]),
        ("currency=USD", ["Devolución Uber", "Uber", "Amazon"]),
        ("kind=withdrawal", ["ATM Escazú"]),
        ("direction=in", ["Devolución Uber", "Salario"]),
        ("q=uber", ["Devolución Uber", "Uber"]),
        ("q=%25", []),  # a typed "%" is a character, not a wildcard
        ("bank=bac&currency=USD&direction=out", ["Uber"]),
        ("month=2025-03&currency=CRC&q=auto", ["Automercado"]),
        # Invalid values are ignored rather than failing the page.
        (
            "currency=EUR&month=2025-13&account=abc&kind=x",
            ["Devolución Uber", "Uber", "Automercado", "Salario", "ATM Escazú", "Amazon"],
        ),
    ],
)
def test_filters(client, sample, query, expected):
    response = client.get("/expenses?" + query.format(pro=sample["pro"]))
    assert response.status_code == 200
    assert row_ids(response.get_data(as_text=True)) == [sample["ids"][n] for n in expected]


def test_filter_form_keeps_the_chosen_values(client, sample):
    html = client.get(
        f"/expenses?bank=bac&account={sample['bac']}&currency=USD&q=ub"
        "&month=2025-03&kind=purchase&direction=out"
    ).get_data(as_text=True)
    for value in ("bac", str(sample["bac"]), "USD", "2025-03", "purchase", "out"):
        assert re.search(rf'<option value="{value}" selected>', html), value
    assert 'name="q" value="ub"' in html
    assert 'href="/expenses.csv?bank=bac&amp;account=' in html


def test_pagination_keeps_filters(app, client, ana):
    with app.app_context():
        acct = account(ana)
        start = cr(2025, 1, 1, 8, 0)
        ids = [
            expense(acct, f"Comercio {i}", occurred_at=start + timedelta(hours=i)).id
            for i in range(120)
        ]
        expense(acct, "En dólares", currency="USD")
        db.session.commit()
    newest_first = ids[::-1]
    first = client.get("/expenses?currency=CRC").get_data(as_text=True)
    assert row_ids(first) == newest_first[:50]
    assert "Página 1 de 3" in first
    assert 'href="/expenses?page=2&amp;currency=CRC"' in first
    assert (
        row_ids(client.get("/expenses?currency=CRC&page=2").get_data(as_text=True))
        == newest_first[50:100]
    )
    last = client.get("/expenses?currency=CRC&page=3").get_data(as_text=True)
    assert row_ids(last) == newest_first[100:]
    assert 'href="/expenses?page=2&amp;currency=CRC"' in last
    beyond = client.get("/expenses?page=99&currency=CRC").get_data(as_text=True)
    assert row_ids(beyond) == [] and 'href="/expenses?currency=CRC">Ir a la primera' in beyond


def test_totals_per_currency_never_mix(app, client, sample):
    with app.app_context():
        totals = {
            t.currency: (t.out_cents, t.in_cents, t.count)
            for t in queries.totals(Filters(), sample["user"])
        }
        march = {
            t.currency: (t.out_cents, t.in_cents, t.count)
            for t in queries.totals(Filters(month="2025-03"), sample["user"])
        }
    assert totals == {"CRC": (32_345_50, 500_000_00, 3), "USD": (135_75, 15_75, 3)}
    assert march == {"CRC": (12_345_50, 500_000_00, 2), "USD": (15_75, 15_75, 2)}

    html = client.get("/expenses").get_data(as_text=True)
    crc = re.search(r'data-currency="CRC">(.*?)</dl>', html, re.S).group(1)
    usd = re.search(r'data-currency="USD">(.*?)</dl>', html, re.S).group(1)
    assert money(Decimal("32345.50"), "CRC") in crc and "+" + money(Decimal("500000"), "CRC") in crc
    assert money(Decimal("135.75"), "USD") in usd and "+" + money(Decimal("15.75"), "USD") in usd
    # Nothing on the page adds colones and dollars (32 345,50 + 135,75 = 32 481,25).
    assert money(Decimal("32481.25"), "CRC")[1:] not in html


def test_monthly_chart_sums_money_out_per_currency_in_costa_rica_months(app, sample):
    now = datetime(2025, 3, 15, tzinfo=UTC)
    with app.app_context():
        acct = db.session.get(EmailAccount, sample["bac"])
        expense(acct, "Hace un año", occurred_at=cr(2024, 3, 31, 23, 59))  # outside the window
        expense(acct, "Abril", amount_cents=7_00, occurred_at=cr(2024, 4, 1, 0, 0))
        db.session.commit()
        charts = queries.monthly_charts(Filters(), sample["user"], now)
        bac_only = queries.monthly_charts(
            Filters(bank="bac", direction="in", month="2025-02"), sample["user"], now
        )
    by_currency = {c.currency: {bar.key: bar.cents for bar in c.bars} for c in charts}
    assert list(by_currency) == ["CRC", "USD"]
    assert list(by_currency["CRC"]) == [
        f"{y}-{m:02d}"
        for y, m in [(2024, m) for m in range(4, 13)] + [(2025, 1), (2025, 2), (2025, 3)]
    ]
    assert by_currency["CRC"]["2025-02"] == 20_000_00  # the 23:30 withdrawal stays in February
    assert by_currency["CRC"]["2025-03"] == 12_345_50  # the salary is money in: not charted
    assert by_currency["CRC"]["2024-04"] == 7_00
    assert by_currency["USD"]["2025-03"] == 15_75 and by_currency["USD"]["2025-02"] == 120_00
    # The chart keeps the other filters but always shows money out over the whole year.
    bac = {c.currency: {bar.key: bar.cents for bar in c.bars} for c in bac_only}
    assert bac["USD"]["2025-02"] == 0 and bac["USD"]["2025-03"] == 15_75
    assert [bar.key for bar in bac_only[0].bars if bar.selected] == ["2025-02"]


def test_chart_geometry_and_labels():
    months = chart.last_months(datetime(2025, 1, 10, tzinfo=UTC))
    drawn = chart.bar_chart("CRC", months, {"2025-01": (250_000_00, 3), "2024-06": (5_00, 1)})
    tallest = drawn.bars[-1]
    assert tallest.y >= 22 and tallest.label == "ene" and tallest.year_label == "2025"
    assert drawn.bars[0].year_label == "2024" and drawn.bars[1].year_label == ""
    assert tallest.value_label == "₡250 mil"
    assert [t.label for t in drawn.ticks] == ["₡0", "₡100 mil", "₡200 mil", "₡300 mil"]
    assert chart.compact(1_234_567_00, "CRC") == "₡1,2 M"
    assert chart.compact(56_789_00, "USD") == "$56,8 mil"
    assert drawn.description.startswith("Salidas en colones por mes, de febrero 2024 a enero 2025")
    assert "fue enero 2025 con" in drawn.description


def test_chart_is_inline_svg_with_text_alternatives(app, client, ana):
    with app.app_context():
        acct = account(ana)
        now = datetime.now(UTC)
        expense(acct, "Este mes", amount_cents=45_000_00, occurred_at=now - timedelta(minutes=5))
        expense(
            acct,
            "En dólares",
            currency="USD",
            amount_cents=30_00,
            occurred_at=now - timedelta(minutes=5),
        )
        db.session.commit()
    html = client.get("/expenses").get_data(as_text=True)
    assert html.count("<svg") == 2
    assert 'aria-labelledby="chart-CRC-title chart-CRC-desc"' in html
    assert '<title id="chart-USD-title">Salidas por mes en dólares</title>' in html
    assert "₡45 mil" in html and "url(#hatch-USD)" in html
    assert 'id="chart-table"' in html and "<script>" not in html.split("</head>")[1]


def test_csv_exact_bytes_of_the_filtered_set(app, client, sample):
    with app.app_context():
        acct = db.session.get(EmailAccount, sample["bac"])
        expense(
            acct,
            'Café, "Tico"',
            amount_cents=1_500_05,
            card_last4="1234",
            authorization="A1",
            reference="R-9",
            occurred_at=cr(2025, 3, 22, 7, 5),
        )
        db.session.commit()
    response = client.get("/expenses.csv?bank=bac&currency=CRC")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="gastos-\d{4}-\d{2}-\d{2}\.csv"',
        response.headers["Content-Disposition"],
    )
    read = "Leído del correo"
    assert (
        response.data
        == (
            "\ufefffecha,banco,cuenta,tipo,direccion,monto,moneda,comercio,categoria,nota,tarjeta,"
            "autorizacion,referencia,origen,corregido,comercio_original\r\n"
            "2025-03-22T07:05:00-06:00,BAC San José,ana@bac.cr,Compra,Salida,1500.05,CRC,"
            f'"Café, ""Tico""",,,1234,A1,R-9,{read},,\r\n'
            "2025-03-10T12:30:00-06:00,BAC San José,ana@bac.cr,Compra,Salida,12345.50,CRC,"
            f"Automercado,,,,,,{read},,\r\n"
            "2025-02-28T23:30:00-06:00,BAC San José,ana@bac.cr,Retiro,Salida,20000.00,CRC,"
            f"ATM Escazú,,,,,,{read},,\r\n"
        ).encode()
    )
    assert response.data.startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("merchant", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)"])
def test_csv_neutralises_formulas(app, client, ana, merchant):
    with app.app_context():
        expense(account(ana), merchant)
        db.session.commit()
    rows = list(csv.reader(io.StringIO(client.get("/expenses.csv").data.decode("utf-8-sig"))))
    assert rows[1][7] == "'" + merchant
    assert rows[1][5] == "1000.00"  # amounts stay numbers


def test_detail_shows_every_field_and_its_sync(app, client, ana):
    with app.app_context():
        session = SyncSession(user_id=ana, status="completed")
        db.session.add(session)
        db.session.flush()
        row = expense(
            account(ana, "davibank", "ana@davi.cr"),
            "Farmacia Fischel",
            amount_cents=8_250_00,
            card_last4="9876",
            authorization="123456",
            reference="FT2503100001",
            sync_session_id=session.id,
        )
        db.session.commit()
        expense_id, token = row.id, session.token
    html = client.get(f"/expenses/{expense_id}").get_data(as_text=True)
    for text in (
        "Farmacia Fischel",
        money(Decimal("8250"), "CRC"),
        "9876",
        "123456",
        "FT2503100001",
        "ana@davi.cr",
        "Scotia Bank",
        "Compra",
        "10 de marzo de 2025",
        f'href="/sync_sessions/{token}"',
    ):
        assert text in html, text


def test_sync_details_link_to_their_expenses(app, client, ana):
    with app.app_context():
        acct = account(ana)
        session = SyncSession(user_id=ana, status="completed")
        db.session.add(session)
        db.session.flush()
        found = expense(acct, "Encontrado", sync_session_id=session.id).id
        expense(acct, "De otra sincronización")
        db.session.commit()
        token = session.token
    detail = client.get(f"/sync_sessions/{token}").get_data(as_text=True)
    assert f'href="/expenses?sync={token}"' in detail
    html = client.get(f"/expenses?sync={token}").get_data(as_text=True)
    assert row_ids(html) == [found]
    assert f'name="sync" value="{token}"' in html  # the filter form keeps it
    assert f"/sync_sessions/{token}" in html
    assert client.get("/expenses?sync=unknown-token").status_code == 404


def test_old_unreadable_address_leads_to_the_review_queue(client, ana):
    response = client.get("/expenses/unreadable")
    assert response.status_code == 301 and response.headers["Location"] == "/review"


def test_another_users_data_never_appears(app, client, ana, other):
    with app.app_context():
        mine = expense(account(ana), "Mío", amount_cents=1_00)
        theirs_account = account(other, "bac", "beto@bac.cr")
        session = SyncSession(user_id=other, status="completed")
        db.session.add(session)
        db.session.flush()
        theirs = expense(
            theirs_account, "Secreto de Beto", amount_cents=999_999_00, sync_session_id=session.id
        )
        db.session.add(
            UnreadableEmail(
                user_id=other,
                email_account_id=theirs_account.id,
                message_key="<b@x>",
                subject="Asunto de Beto",
                reason="parser_error",
            )
        )
        db.session.commit()
        mine_id, theirs_id, their_account, token = (
            mine.id,
            theirs.id,
            theirs_account.id,
            session.token,
        )
        assert queries.monthly_charts(Filters(), ana, datetime(2025, 3, 15, tzinfo=UTC)) and {
            t.currency: t.out_cents for t in queries.totals(Filters(), ana)
        } == {"CRC": 1_00}
    pages = [
        client.get(p).get_data(as_text=True)
        for p in ("/expenses", "/expenses.csv", "/review", "/expenses?q=secreto")
    ]
    for html in pages:
        for text in (
            "Secreto de Beto",
            "Asunto de Beto",
            "beto@bac.cr",
            "999999.00",
            money(Decimal("999999"), "CRC"),
        ):
            assert text not in html
    assert row_ids(pages[0]) == [mine_id]
    assert client.get(f"/expenses/{theirs_id}").status_code == 404
    assert client.get(f"/expenses/{mine_id}").status_code == 200
    assert row_ids(client.get(f"/expenses?account={their_account}").get_data(as_text=True)) == []
    assert client.get(f"/expenses?sync={token}").status_code == 404
    assert client.get(f"/expenses.csv?sync={token}").status_code == 404
    assert client.get("/expenses/999999").status_code == 404


@pytest.mark.parametrize("payload", XSS)
def test_merchant_and_email_text_are_escaped_everywhere(app, client, ana, payload):
    with app.app_context():
        acct = account(ana)
        session = SyncSession(user_id=ana, status="completed")
        db.session.add(session)
        db.session.flush()
        row = expense(
            acct,
            payload,
            sync_session_id=session.id,
            occurred_at=datetime.now(UTC) - timedelta(hours=1),
        )
        db.session.add(
            UnreadableEmail(
                user_id=ana,
                email_account_id=acct.id,
                message_key="<x@x>",
                sender=payload,
                subject=payload,
                reason=payload,
            )
        )
        db.session.commit()
        paths = [
            "/expenses",
            f"/expenses?q={payload}",
            f"/expenses/{row.id}",
            "/review",
            f"/sync_sessions/{session.token}",
            f"/expenses?sync={session.token}",
        ]
    for path in paths:
        html = client.get(path).get_data(as_text=True)
        assert payload not in html, path
        assert ESCAPED[payload] in html, path


def test_parse_filters_drops_invalid_values():
    assert parse_filters(
        {"bank": "bac", "month": "2025-02", "account": "7", "q": "  uber  ", "sync": "abc_DEF-1"}
    ) == Filters(bank="bac", month="2025-02", account=7, q="uber", sync="abc_DEF-1")
    assert (
        parse_filters(
            {
                "bank": "x",
                "month": "2025-2",
                "account": "-1",
                "currency": "crc",
                "direction": "both",
                "sync": "a b",
                "q": " ",
            }
        )
        == Filters()
    )
    assert Filters(bank="bac", q="x").args(page=2) == {"bank": "bac", "q": "x", "page": 2}
