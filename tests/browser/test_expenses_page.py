"""The expenses page in real headless Chromium: a few hundred expenses, filtered, screenshotted."""

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from expense_sync.extensions import db
from expense_sync.models import EmailAccount, Expense

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
EMAIL, PASSWORD = "ana@example.cr", "contraseña-segura"
MERCHANTS = [
    "Automercado Escazú",
    "Walmart Curridabat",
    "Uber Trip",
    "Farmacia Fischel",
    "Gasolinera Delta",
    "Más x Menos",
    "Netflix.com",
    "Soda La Tica",
    "Spoon",
    "Amazon Marketplace",
    "Cinépolis",
    "Pricesmart Zapote",
]
XSS = "<img src=x onerror=alert(1)>"


def seed(user_id: int, count: int = 300) -> dict[str, int]:
    """`count` expenses over the last 12 months in three banks and both currencies."""
    rng = random.Random(7)
    accounts = [
        EmailAccount(
            user_id=user_id,
            bank=bank,
            address=f"ana@{bank}.example.cr",
            source_kind="mbox",
            local_path=f"{bank}.mbox",
        )
        for bank in ("bac", "davibank", "promerica")
    ]
    db.session.add_all(accounts)
    db.session.flush()
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        account = rng.choice(accounts)
        usd = rng.random() < 0.25
        kind = rng.choices(
            ["purchase", "withdrawal", "transfer_out", "transfer_in", "refund"], [70, 8, 8, 8, 6]
        )[0]
        rows.append(
            Expense(
                user_id=user_id,
                email_account_id=account.id,
                bank=account.bank,
                message_key=f"<{uuid.uuid4().hex}@bank>",
                kind=kind,
                direction="in" if kind in ("transfer_in", "refund") else "out",
                currency="USD" if usd else "CRC",
                amount_cents=rng.randint(300, 15_000) if usd else rng.randint(1_500_00, 85_000_00),
                merchant=XSS if i == 0 else rng.choice(MERCHANTS),
                # The hostile merchant is the newest, so it is on the first page.
                occurred_at=now - timedelta(days=0.01 if i == 0 else rng.uniform(0.1, 360)),
                card_last4=f"{rng.randint(0, 9999):04d}",
            )
        )
    db.session.add_all(rows)
    db.session.commit()
    return {"bac_out": sum(1 for r in rows if r.bank == "bac" and r.direction == "out")}


@pytest.fixture
def live_server(app):
    """The app on a real HTTP server in a thread, on a free port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["SERVER_NAME"] = f"127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="es-CR")
    yield context.new_page()
    context.close()


# The browser needs one real server; SQLite is enough for it.
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_expenses_page_filters_and_charts(app, auth, live_server, browser_page):
    user_id = auth.create(EMAIL, PASSWORD)
    with app.app_context():
        counts = seed(user_id)
    page = browser_page
    problems, dialogs = [], []
    # CSP violations and script errors show up as console errors; the browser's own
    # favicon request is the one 404 that is not ours to fix.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{live_server}/login")
    page.get_by_label("Correo electrónico").fill(EMAIL)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/sync")
    page.get_by_role("link", name="Gastos").click()

    expect(page.locator("#expense-count")).to_have_text("300 movimientos.")
    expect(page.locator("#expense-list tbody tr")).to_have_count(50)
    # The merchant that tries to run script is shown as text, and nothing ran.
    expect(page.locator("#expense-list").get_by_text(XSS)).to_be_visible()

    page.get_by_label("Banco").select_option(label="BAC San José")
    page.get_by_label("Dirección").select_option("out")
    page.get_by_role("button", name="Filtrar").click()
    page.wait_for_url("**/expenses?*bank=bac*")

    expect(page.locator("#expense-count")).to_have_text(
        f"{counts['bac_out']} movimientos con los filtros elegidos."
    )
    expect(page.locator("#expense-list tbody tr").first).to_contain_text("BAC San José")
    assert set(
        page.locator("#expense-list tbody tr td:nth-child(3) p:first-child").all_inner_texts()
    ) == {"BAC San José"}
    expect(page.locator("#expense-totals [data-currency]")).to_have_count(2)
    chart = page.locator("#expense-chart svg")
    expect(chart).to_have_count(2)
    expect(chart.first).to_be_visible()
    assert chart.first.bounding_box()["height"] > 150
    assert page.locator("#expense-chart svg[data-currency=CRC] rect").count() >= 10

    # Filters, totals, the chart and the first rows of the list: the page's useful top.
    section = page.locator("#expense-chart").bounding_box()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / "expenses.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": section["y"] + section["height"] + 320},
    )

    page.get_by_text("Ver los datos en una tabla").click()
    expect(page.locator("#chart-table tbody tr")).to_have_count(12)

    page.locator("#expense-list tbody tr a").first.click()
    expect(page.locator("#expense-detail")).to_contain_text("ana@bac.example.cr")
    page.screenshot(path=str(ARTIFACTS / "expense-detail.png"))
    assert problems == [] and dialogs == []
