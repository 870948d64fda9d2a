"""The generic reader: a first reading of an unreadable notice, for the user to confirm."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from expense_sync.parsing.dates import COSTA_RICA as CR
from expense_sync.parsing.guess import guess

SENT = datetime(2026, 10, 11, 17, 11, tzinfo=ZoneInfo("UTC"))


def test_labels_with_the_value_on_the_next_line():
    found = guess(
        "Notificación de transacción HOTEL PLAYA",
        "Comercio:\nHOTEL PLAYA\n"
        "Fecha:\nOct 11, 2026, 11:11\nTipo de Transacción:\nANULACION\n"
        "Monto:\nUSD 310.00",
        SENT,
    )
    assert (found.amount, found.currency, found.merchant, found.kind) == (
        Decimal("310.00"),
        "USD",
        "HOTEL PLAYA",
        "purchase",
    )
    assert found.occurred_at == datetime(2026, 10, 11, 11, 11, tzinfo=CR)


@pytest.mark.parametrize(
    ("text", "merchant"),
    [
        ("Establecimiento: SODA LA PEÑA\nMonto: ₡8.250,50", "SODA LA PEÑA"),
        ("Nombre del comercio WALMART ESCAZU\nMonto CRC 45,320.75", "WALMART ESCAZU"),
        (
            "Detalle de la transacción: Pago SINPE a MARÍA\nMonto: 5 000,00 colones",
            "Pago SINPE a MARÍA",
        ),
        ("Le informamos que su compra fue aprobada por ₡1 000,00.", None),
    ],
)
def test_merchant_labels(text, merchant):
    assert guess("Aviso", text, SENT).merchant == merchant


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Retiro en cajero automático por ₡20.000,00", "withdrawal"),
        ("Transferencia SINPE Móvil enviada por ₡5.000,00", "transfer_out"),
        ("Ha recibido una transferencia SINPE por ₡5.000,00", "transfer_in"),
        ("Devolución a su tarjeta por $12.00", "refund"),
        ("Compra en AUTOMERCADO por ₡12.500,00", "purchase"),
    ],
)
def test_kind_from_the_words_of_the_notice(text, kind):
    assert guess(None, text, SENT).kind == kind


def test_the_amount_in_the_subject_comes_first_and_the_date_falls_back_to_the_header():
    found = guess("Compra por $14.99", "Gracias por su compra de ₡500,00 en puntos.", SENT)
    assert (found.amount, found.currency) == (Decimal("14.99"), "USD")
    assert found.occurred_at == SENT.astimezone(CR)


def test_nothing_to_read_gives_an_empty_guess():
    found = guess(None, None, None)
    assert (found.amount, found.currency, found.occurred_at, found.merchant, found.kind) == (
        None,
        None,
        None,
        None,
        "purchase",
    )
