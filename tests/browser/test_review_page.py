"""Deciding what could not be read, adding cash by hand, on a laptop and on a phone."""

import csv
import io
import threading
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from werkzeug.serving import make_server

from expense_sync.extensions import db
from expense_sync.ingest import message_key, store_batch
from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount
from expense_sync.parsing import parse_message

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "emails"
EMAIL, PASSWORD = "ana@example.cr", "contraseña-segura"
PHONE = {"width": 390, "height": 844}
# Every element that sticks out of the viewport on the right, unless it sits in a box that
# scrolls sideways on purpose; the page itself must never scroll sideways.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      const sideways = ["auto", "scroll"].includes(style.overflowX);
      if (sideways && p.scrollWidth > p.clientWidth) return true;
    }
    return false;
  };
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push("page scrolls sideways");
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.height && box.right > width + 0.5 && !scrolls(el))
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}: ${Math.round(box.right)}px`);
  }
  return out;
}"""


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


def open_page(browser, viewport):
    context = browser.new_context(viewport=viewport, locale="es-CR", accept_downloads=True)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def log_in(page, url):
    page.goto(f"{url}/login")
    page.get_by_label("Correo electrónico").fill(EMAIL)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/sync")


def synced(user_id: int, *names: str) -> None:
    """What a sync of real BAC notices stores: here, mail it could not read."""
    account = EmailAccount(
        user_id=user_id, bank="bac", address=EMAIL, source_kind="mbox", local_path="bac.mbox"
    )
    row = SyncSessionAccount(
        sync_session=SyncSession(user_id=user_id, status="completed"),
        email_account=account,
        status="processing",
    )
    db.session.add(row)
    db.session.commit()
    items = []
    for uid, name in enumerate(names, 1):
        raw = (FIXTURES / name).read_bytes()
        outcome = parse_message(raw, own_addresses=[EMAIL])
        items.append((uid, message_key(outcome, raw), outcome))
    store_batch(account, row, items, uidvalidity=1)


def no_overflow(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
    assert page.evaluate(OVERFLOWING) == [], name


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_an_unreadable_notice_becomes_an_expense_from_the_queue(app, auth, live_server, browser):
    with app.app_context():
        synced(
            auth.create(EMAIL, PASSWORD),
            "bac_unparsed_unknown_type.eml",
            "bac_declined_status_row.eml",
        )
    page = open_page(browser, {"width": 1280, "height": 900})
    log_in(page, live_server)
    nav = page.get_by_role("navigation", name="Principal")
    expect(nav.get_by_role("link", name="Por revisar")).to_contain_text("1")
    nav.get_by_role("link", name="Por revisar").click()
    page.get_by_role("link", name="Notificación de transacción HOTEL PLAYA").click()

    expect(page.locator("#mail-text")).to_contain_text("ANULACION")
    expect(page.locator("#mail-reason")).to_have_text("Tipo de movimiento desconocido")
    form = page.locator("#register-form")
    expect(form.get_by_label("Monto")).to_have_value("310.00")
    expect(form.get_by_label("Moneda")).to_have_value("USD")
    expect(form.get_by_label("Comercio o detalle")).to_have_value("HOTEL PLAYA")
    # An annulment gives the money back: the user says so.
    form.get_by_label("Tipo").select_option(label="Devolución")
    form.get_by_label("Categoría").fill("Viajes")
    form.get_by_role("button", name="Registrar gasto").click()

    detail = page.locator("#expense-detail")
    expect(detail).to_contain_text("+$310,00")
    expect(detail).to_contain_text("Registrado desde un correo por revisar")
    expect(nav.get_by_role("link", name="Por revisar")).not_to_contain_text("1")
    page.get_by_role("link", name="Gastos").first.click()
    expect(page.locator("#expense-list")).to_contain_text("HOTEL PLAYA")
    expect(page.locator("#expense-list")).to_contain_text("Registrado por usted")
    # What the rules ignored can be seen on request.
    page.goto(f"{live_server}/review?show=ignored")
    expect(page.locator("#review-list")).to_contain_text("Transacción rechazada")
    assert page.problems == []


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_cash_expense_is_added_and_exported(app, auth, live_server, browser):
    auth.create(EMAIL, PASSWORD)
    page = open_page(browser, {"width": 1280, "height": 900})
    log_in(page, live_server)
    page.get_by_role("link", name="Gastos").first.click()
    page.get_by_role("link", name="Agregar gasto").click()
    form = page.locator("#expense-form")
    expect(form.get_by_label("Medio de pago")).to_have_value("cash")
    form.get_by_label("Monto").fill("3.750,50")
    form.get_by_label("Fecha y hora").fill("2026-11-28T07:45")
    form.get_by_label("Comercio o detalle").fill("Feria del agricultor")
    form.get_by_label("Categoría").fill("Supermercado")
    form.get_by_role("button", name="Agregar gasto").click()
    expect(page.locator("#expense-detail")).to_contain_text("Agregado a mano")

    page.get_by_role("link", name="← Volver a los gastos").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar CSV").click()
    rows = list(
        csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig")))
    )
    assert [(r["banco"], r["monto"], r["comercio"], r["origen"]) for r in rows] == [
        ("Efectivo", "3750.50", "Feria del agricultor", "Agregado a mano")
    ]
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar Excel").click()
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert download.value.suggested_filename.endswith(".xlsx")
    assert [c.value for c in sheet[2]][:6] == [
        sheet[2][0].value,
        "Efectivo",
        None,
        "Compra",
        "Salida",
        3750.5,
    ]
    assert page.problems == []


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_expense_and_review_pages_fit_a_phone(app, auth, live_server, browser):
    with app.app_context():
        user_id = auth.create(EMAIL, PASSWORD)
        synced(
            user_id,
            "bac_unparsed_unknown_type.eml",
            "bac_purchase_html_spanish_month.eml",
            "bac_purchase_forwarded_original.eml",
            "bac_transfer_out_european_amount.eml",
        )
    page = open_page(browser, PHONE)
    log_in(page, live_server)
    page.goto(f"{live_server}/expenses")
    expect(page.locator("#expense-cards li")).to_have_count(3)
    expect(page.locator("#expense-list")).to_be_hidden()  # the table is for wider screens
    no_overflow(page, "expenses")
    page.locator("#expense-cards a").first.click()
    no_overflow(page, "expense-detail")
    page.get_by_role("link", name="Corregir").click()
    no_overflow(page, "expense-edit")
    page.goto(f"{live_server}/review")
    no_overflow(page, "review")
    page.locator("#review-list a").first.click()
    expect(page.locator("#register-form")).to_be_visible()
    no_overflow(page, "review-detail")
    page.goto(f"{live_server}/expenses/new")
    no_overflow(page, "expense-new")
    assert page.problems == []
