"""The bank registry: the README lists its banks, and adding a bank is adding a module."""

import importlib
import mailbox
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import csrf_token

from expense_sync.cli import BankChoice
from expense_sync.demo import write_maildir
from expense_sync.expenses.filters import parse_filters, payment_means
from expense_sync.extensions import db
from expense_sync.models import EmailAccount, Expense
from expense_sync.parsing import banks, parse_message
from expense_sync.parsing.registry import (
    BANKS,
    _import_bank_modules,
    bank_choices,
    bank_for_sender,
    bank_sender_domains,
    load_banks,
)

README = Path(__file__).resolve().parents[1] / "README.md"
_TABLE_BANK = re.compile(r"(?P<name>.+) \(`(?P<code>[a-z0-9_]+)`\)")

# What a new bank's author writes: one module in parsing/banks/, nothing anywhere else.
NEW_BANK_MODULE = '''\
"""Banco de Prueba: a bank that exists while one test runs."""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import to_costa_rica
from ..fields import read_bodies, transaction
from ..mime import Mail
from ..model import Outcome
from ..registry import BankParser, register
from ..text import Body

CODE = "prueba"
_PURCHASE = re.compile(r"\\bcompra por (?P<money>.+?) en (?P<merchant>.+?)\\.", re.I)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    match = _PURCHASE.search(body.flat_folded)
    if match is None:
        return None
    return transaction(CODE, "purchase", find_money(match.group("money")),
                       to_costa_rica(mail.sent_at), merchant=match.group("merchant"))


PARSER = register(
    BankParser(
        code=CODE,
        name="Banco de Prueba",
        sender_domains=("bancodeprueba.cr",),
        names=r"\\bbanco de prueba\\b",
        order=10,
        parse=parse,
    )
)
'''
NOTICE = b"""\
From: Banco de Prueba <alertas@notificaciones.bancodeprueba.cr>
To: ana@example.cr
Subject: Compra aprobada
Date: Tue, 10 Mar 2026 12:30:00 -0600
Message-ID: <20260310123000.1@bancodeprueba.cr>
Content-Type: text/plain; charset=utf-8

Banco de Prueba le informa de una compra por CRC 12.500,00 en SUPER LA ESQUINA.
"""
NEW_BANK_OPTION = re.compile(r'<option[^>]* value="prueba"[^>]*>Banco de Prueba</option>')


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    return text[start : text.find("\n## ", start + 1)]


def test_the_readme_table_lists_every_registry_bank_and_no_other():
    rows = readme_section("Supported banks").splitlines()
    first_cells = [row.split("|")[1].strip() for row in rows if row.startswith("| ")][2:]
    table: dict[str, str] = {}
    for cell in first_cells:
        match = _TABLE_BANK.fullmatch(cell)
        assert match, f"a README bank row without its (`code`): {cell!r}"
        assert match["code"] not in table, f"{match['code']} has two rows"
        table[match["code"]] = match["name"]
    registry = dict(bank_choices())
    assert table.keys() == registry.keys()
    for code, name in registry.items():
        assert table[code].startswith(name), (code, name)  # the name the app shows first


def test_the_readme_names_the_banks_the_command_line_takes():
    listed = re.search(r"--bank \{([^}]*)\}", readme_section("Command line"))[1]
    assert listed.split(",") == [code for code, _ in bank_choices()]
    assert BankChoice().choices == tuple(code for code, _ in bank_choices())


@pytest.fixture
def new_bank(tmp_path_factory):
    """A bank module dropped into parsing/banks for one test, then taken out again."""
    saved = dict(BANKS)
    folder = tmp_path_factory.mktemp("more_banks")
    (folder / "prueba.py").write_text(NEW_BANK_MODULE, encoding="utf-8")
    banks.__path__.append(str(folder))
    importlib.invalidate_caches()
    _import_bank_modules.cache_clear()  # the registry imports the package's modules once
    try:
        yield load_banks()["prueba"]
    finally:
        banks.__path__.remove(str(folder))
        sys.modules.pop(f"{banks.__name__}.prueba", None)
        if hasattr(banks, "prueba"):
            delattr(banks, "prueba")
        BANKS.clear()
        BANKS.update(saved)
        _import_bank_modules.cache_clear()
        bank_for_sender.cache_clear()
    assert load_banks() == saved and "bancodeprueba.cr" not in bank_sender_domains()


def test_a_bank_module_added_reads_its_senders_mail(new_bank):
    assert bank_choices()[-1] == ("prueba", "Banco de Prueba")  # order=10: after the rest
    assert "bancodeprueba.cr" in bank_sender_domains()  # the IMAP prefilter asks for it
    outcome = parse_message(NOTICE)
    assert (outcome.status, outcome.bank) == ("transaction", "prueba")
    tx = outcome.transaction
    assert (tx.kind, tx.amount, tx.currency) == ("purchase", Decimal("12500.00"), "CRC")
    assert tx.merchant == "SUPER LA ESQUINA"


def test_a_bank_module_added_is_offered_wherever_a_bank_is_chosen(
    app, auth, client, runner, new_bank, tmp_path
):
    user_id = auth.create()
    auth.login()
    assert "Banco de Prueba." in client.get("/accounts").get_data(as_text=True)  # no account yet

    # The account form offers it and takes it.
    assert NEW_BANK_OPTION.search(client.get("/accounts/new").get_data(as_text=True))
    write_maildir(tmp_path / str(user_id) / "prueba", [])
    response = client.post(
        "/accounts/new",
        data={
            "bank": "prueba",
            "address": "ana@example.cr",
            "source_kind": "maildir",
            "local_path": "prueba",
            "csrf_token": csrf_token(client, "/accounts"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)

    # So does the command line.
    assert "prueba" in runner.invoke(args=["add-account", "--help"]).output
    path = tmp_path / "prueba.mbox"
    mailbox.mbox(path).close()
    result = runner.invoke(
        args=[
            "add-account",
            "--user",
            "ana@example.cr",
            "--bank",
            "prueba",
            "--address",
            "otra@example.cr",
            "--mbox",
            str(path),
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        accounts = db.session.scalars(db.select(EmailAccount).order_by(EmailAccount.id)).all()
        assert [(a.bank, a.bank_name) for a in accounts] == [("prueba", "Banco de Prueba")] * 2

    # The manual-expense form offers it as a means of payment.
    assert NEW_BANK_OPTION.search(client.get("/expenses/new").get_data(as_text=True))
    response = client.post(
        "/expenses/new",
        data={
            "occurred_at": "2026-11-28T07:45",
            "amount": "2.500,00",
            "currency": "CRC",
            "kind": "purchase",
            "bank": "prueba",
            "merchant": "Soda La Esquina",
            "csrf_token": csrf_token(client, "/expenses"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        expense = db.session.scalars(db.select(Expense)).one()
        assert (expense.bank, expense.bank_name) == ("prueba", "Banco de Prueba")

    # The list filters by it.
    assert payment_means()["prueba"] == "Banco de Prueba"
    assert parse_filters({"bank": "prueba"}).bank == "prueba"
    listed = client.get("/expenses?bank=prueba").get_data(as_text=True)
    assert '<option value="prueba" selected>Banco de Prueba</option>' in listed
    assert "Soda La Esquina" in listed
