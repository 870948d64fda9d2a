"""The review queue: bank mail that gave no expense, kept with its text, decided by the user."""

import re
import zlib
from pathlib import Path

import pytest
from helpers import PURCHASE, UNKNOWN_TYPE, csrf_token, raw, store, sync_row

from expense_sync.extensions import db
from expense_sync.models import (
    Expense,
    SyncSessionAccount,
    UnreadableEmail,
)
from expense_sync.parsing import parse_message

DECLINED = "bac_declined_status_row.eml"
NOT_FROM_BANK = (
    b"From: Tienda <ventas@tienda.example>\nTo: ana@example.cr\n"
    b"Subject: Su compra por $5.00\nMessage-ID: <t1@tienda.example>\n\nGracias.\n"
)


@pytest.fixture
def ana(app, auth):
    user_id = auth.create()
    auth.login()
    return user_id


def kept(user_id: int) -> dict[str, UnreadableEmail]:
    db.session.expire_all()
    rows = db.session.scalars(db.select(UnreadableEmail).filter_by(user_id=user_id))
    return {row.reason: row for row in rows}


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/review")} | data)


def register_data(**changes) -> dict:
    return {
        "occurred_at": "2026-10-11T11:11",
        "amount": "310,00",
        "currency": "USD",
        "kind": "purchase",
        "bank": "bac",
        "merchant": "HOTEL PLAYA",
        "category": "Viajes",
        "note": "",
    } | changes


def test_bank_mail_without_expense_is_kept_with_its_text(app, ana):
    with app.app_context():
        result = store(
            sync_row(ana), raw(UNKNOWN_TYPE), raw(DECLINED), NOT_FROM_BANK, raw(PURCHASE)
        )
        rows = kept(ana)
        assert (result.processed, result.detected, result.errors) == (4, 1, 1)
        assert set(rows) == {"unknown_type", "declined"}  # mail of no bank is not kept
        unreadable, declined = rows["unknown_type"], rows["declined"]
        assert unreadable.status == "unparsed" and "HOTEL PLAYA" in unreadable.text
        assert zlib.decompress(unreadable.raw_message) == raw(UNKNOWN_TYPE)
        # Ignored mail keeps its text for the user, not its message.
        assert declined.status == "ignored" and "Rechazada" in declined.text
        assert declined.raw_message is None


def test_queue_lists_what_waits_and_the_ignored_on_request(app, client, ana):
    with app.app_context():
        store(sync_row(ana), raw(UNKNOWN_TYPE), raw(DECLINED))
    pending = client.get("/review").get_data(as_text=True)
    assert "HOTEL PLAYA" in pending and "UBER *TRIP" not in pending
    assert "Tipo de movimiento desconocido" in pending
    assert re.search(r"Por revisar\s*<span[^>]*>\(1\)", pending)
    ignored = client.get("/review?show=ignored").get_data(as_text=True)
    assert "UBER *TRIP" in ignored and "Transacción rechazada" in ignored
    assert "HOTEL PLAYA" not in ignored
    # The navigation and the expenses page point at what waits.
    expenses = client.get("/expenses").get_data(as_text=True)
    assert 'id="review-hint"' in expenses and "1 correo del banco no se pudo leer" in expenses


def test_mail_is_shown_as_escaped_text_with_a_prefilled_form(app, client, ana):
    hostile = raw(UNKNOWN_TYPE).replace(
        b"Hola JUAN", b'<img src=3D"https://tracker.example/p.gif"><script>x()</script>Hola JUAN'
    )
    with app.app_context():
        store(sync_row(ana), hostile)
        mail_id = kept(ana)["unknown_type"].id
    html = client.get(f"/review/{mail_id}").get_data(as_text=True)
    assert "tracker.example/p.gif&#34;&gt;" in html or "tracker.example/p.gif&quot;&gt;" in html
    assert "<script>x()" not in html and '<img src="https://tracker' not in html
    form = html[html.index('id="register-form"') :]
    assert 'name="amount"' in form and 'value="310.00"' in form
    assert re.search(r'<option selected value="USD">|<option value="USD" selected', form)
    assert 'value="HOTEL PLAYA"' in form and 'value="2026-10-11T11:11"' in form


def test_registering_makes_an_expense_that_a_later_parse_does_not_repeat(app, client, ana):
    # The purchase an older parser could not read: today's reads it.
    with app.app_context():
        row = sync_row(ana)
        message = raw(PURCHASE)
        outcome = parse_message(message)
        db.session.add(
            UnreadableEmail(
                user_id=ana,
                email_account_id=row.email_account_id,
                message_key=outcome.message_id,
                sender=outcome.sender,
                subject=outcome.subject,
                sent_at=outcome.sent_at,
                reason="unknown_layout",
                raw_message=zlib.compress(message),
                text="Comercio: AUTOMERCADO LOS YOSES",
            )
        )
        db.session.commit()
        mail_id = kept(ana)["unknown_layout"].id
    response = post(
        client,
        f"/review/{mail_id}/register",
        **register_data(
            amount="12.500,00",
            currency="CRC",
            merchant="Automercado",
            occurred_at="2026-01-15T13:05",
        ),
    )
    assert response.status_code == 302 and "/expenses/" in response.headers["Location"]
    assert "AUTOMERCADO" not in client.get("/review").get_data(as_text=True)
    # Read again by today's parsers: the user's expense stays the only one.
    post(client, f"/review/{mail_id}/reread")
    with app.app_context():
        expenses = db.session.scalars(db.select(Expense).filter_by(user_id=ana)).all()
        assert [(e.origin, e.amount_cents, e.merchant, e.category) for e in expenses] == [
            ("review", 12_500_00, "Automercado", "Viajes")
        ]
        assert expenses[0].message_key == outcome.message_id


def test_rereading_a_mail_that_now_reads_adds_its_expense(app, client, ana):
    with app.app_context():
        row = sync_row(ana)
        message = raw(PURCHASE)
        outcome = parse_message(message)
        db.session.add(
            UnreadableEmail(
                user_id=ana,
                email_account_id=row.email_account_id,
                message_key=outcome.message_id,
                reason="unknown_layout",
                raw_message=zlib.compress(message),
            )
        )
        db.session.commit()
        store(row, raw(UNKNOWN_TYPE), first_uid=2)
        mail_id = kept(ana)["unknown_layout"].id
    response = post(client, "/review/reread")
    assert response.status_code == 302
    page = client.get("/review").get_data(as_text=True)
    assert "Se volvieron a leer 2 correos; 1 ya se pudieron leer." in page
    assert client.get(f"/review/{mail_id}").status_code == 404  # read now: no longer kept
    with app.app_context():
        expense = db.session.scalars(db.select(Expense).filter_by(user_id=ana)).one()
        assert (expense.origin, expense.merchant, expense.amount_cents) == (
            "mail",
            "AUTOMERCADO LOS YOSES",
            12_500_00,
        )
        assert set(kept(ana)) == {"unknown_type"}  # still unreadable, still waiting


def test_not_a_movement_leaves_the_queue_and_can_come_back(app, client, ana):
    with app.app_context():
        store(sync_row(ana), raw(UNKNOWN_TYPE))
        mail_id = kept(ana)["unknown_type"].id
    post(client, f"/review/{mail_id}/dismiss")
    assert "HOTEL PLAYA" not in client.get("/review").get_data(as_text=True)
    decided = client.get("/review?show=decided").get_data(as_text=True)
    assert "HOTEL PLAYA" in decided and "No es un movimiento" in decided
    post(client, f"/review/{mail_id}/restore")
    assert "HOTEL PLAYA" in client.get("/review").get_data(as_text=True)


def test_a_new_parser_version_keeps_the_users_decisions(app, client, ana):
    with app.app_context():
        row = sync_row(ana)
        store(row, raw(UNKNOWN_TYPE), raw(DECLINED))
        row_id, mail_id = row.id, kept(ana)["unknown_type"].id
    post(client, f"/review/{mail_id}/register", **register_data())
    with app.app_context():
        row = db.session.get(SyncSessionAccount, row_id)
        row.email_account.reread_until_uid = 2  # the folder is read again from the start
        store(row, raw(UNKNOWN_TYPE), raw(DECLINED))
        rows = kept(ana)
        assert rows["unknown_type"].decision == "registered"
        assert db.session.scalars(db.select(Expense.origin).filter_by(user_id=ana)).all() == [
            "review"
        ]


def test_a_wrong_amount_is_refused_in_spanish(app, client, ana):
    with app.app_context():
        store(sync_row(ana), raw(UNKNOWN_TYPE))
        mail_id = kept(ana)["unknown_type"].id
    response = post(client, f"/review/{mail_id}/register", **register_data(amount="trescientos"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Escriba el monto con números" in html and 'href="#amount"' in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Expense)) == 0


def test_another_users_mail_is_not_found(app, client, ana, auth):
    with app.app_context():
        store(sync_row(ana), raw(UNKNOWN_TYPE))
        mail_id = kept(ana)["unknown_type"].id
    auth.logout()
    auth.create("beto@example.cr")
    auth.login("beto@example.cr")
    assert client.get(f"/review/{mail_id}").status_code == 404
    assert "HOTEL PLAYA" not in client.get("/review?show=decided").get_data(as_text=True)
    for action in ("register", "dismiss", "restore", "reread"):
        assert post(client, f"/review/{mail_id}/{action}", **register_data()).status_code == 404
    with app.app_context():
        assert kept(ana)["unknown_type"].decision is None


def test_every_reason_has_a_spanish_label():
    from expense_sync.formatting import REASONS
    from expense_sync.parsing.model import IGNORED_REASONS, UNPARSED_REASONS

    assert set(IGNORED_REASONS) | set(UNPARSED_REASONS) <= set(REASONS)


def test_migration_keeps_old_rows_as_unreadable_mail_and_mail_expenses(app):
    from flask_migrate import downgrade, upgrade

    migrations = str(Path(__file__).resolve().parents[1] / "migrations")
    with app.app_context():
        db.session.remove()
        downgrade(directory=migrations, revision="a925d2ed956a")
        try:
            db.session.execute(
                db.text(
                    'INSERT INTO "user" (id, email, password_hash, is_admin, session_nonce,'
                    " created_at) VALUES (1, 'a@example.cr', 'x', false, 'n', CURRENT_TIMESTAMP)"
                )
            )
            db.session.execute(
                db.text(
                    "INSERT INTO email_account (id, user_id, bank, address, source_kind, folder,"
                    " last_uid, uidvalidity_changes, parser_version, reread_until_uid, created_at)"
                    " VALUES (1, 1, 'bac', 'a@example.cr', 'imap', 'INBOX', 4, 0, 2, 0,"
                    " CURRENT_TIMESTAMP)"
                )
            )
            db.session.execute(
                db.text(
                    "INSERT INTO unreadable_email (user_id, email_account_id, message_key, reason,"
                    " created_at) VALUES (1, 1, '<u@x>', 'unknown_layout', CURRENT_TIMESTAMP)"
                )
            )
            db.session.execute(
                db.text(
                    "INSERT INTO expense (user_id, email_account_id, message_key, bank, kind,"
                    " direction, amount_cents, currency, occurred_at, created_at) VALUES"
                    " (1, 1, '<e@x>', 'bac', 'purchase', 'out', 100, 'CRC', CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                )
            )
            db.session.commit()
        finally:
            db.session.remove()
            upgrade(directory=migrations)
        mail = db.session.scalars(db.select(UnreadableEmail)).one()
        assert (mail.status, mail.decision, mail.text, mail.raw_message) == (
            "unparsed",
            None,
            None,
            None,
        )
        expense = db.session.scalars(db.select(Expense)).one()
        assert (expense.origin, expense.deleted_at, expense.original_values) == ("mail", None, None)


def test_a_new_parser_does_not_overrule_no_es_un_movimiento(app, client, ana):
    # The user dismissed a notice an older parser could not read; today's reads it.
    with app.app_context():
        row = sync_row(ana)
        outcome = parse_message(raw(PURCHASE))
        db.session.add(
            UnreadableEmail(
                user_id=ana,
                email_account_id=row.email_account_id,
                message_key=outcome.message_id,
                reason="unknown_layout",
                decision="dismissed",
            )
        )
        row.email_account.reread_until_uid = 1
        db.session.commit()
        result = store(row, raw(PURCHASE))
        assert result.detected == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Expense)) == 0
        assert kept(ana)["unknown_layout"].decision == "dismissed"


def test_a_decided_mail_takes_no_second_decision(app, client, ana):
    with app.app_context():
        store(sync_row(ana), raw(UNKNOWN_TYPE))
        mail_id = kept(ana)["unknown_type"].id
    post(client, f"/review/{mail_id}/register", **register_data())
    for action in ("dismiss", "reread", "register"):
        page = post(client, f"/review/{mail_id}/{action}", **register_data())
        assert page.status_code == 302
    with app.app_context():
        assert kept(ana)["unknown_type"].decision == "registered"
        assert db.session.scalar(db.select(db.func.count()).select_from(Expense)) == 1
