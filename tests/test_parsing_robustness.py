"""parse_message never raises and never guesses, whatever bytes it is given."""

import json
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from helpers import FIXTURES, SHARED_SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expense_sync.parsing import BANKS, Outcome, parse_message
from expense_sync.parsing.model import KINDS
from expense_sync.parsing.registry import register

SAMPLES = SHARED_SAMPLES / "emails"
SEEDS = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))] + [
    path.read_bytes() for path in sorted(SAMPLES.glob("*.eml"))[:40]
]

HEAD = (
    "From: BAC Credomatic <notificacion@notificacionesbaccr.com>\n"
    "To: {to}\nSubject: =?utf-8?q?Notificaci=C3=B3n_de_transacci=C3=B3n?= KFC\n"
    "Date: Tue, 31 Mar 2026 22:09:00 -0600\nMessage-ID: <big@notificacionesbaccr.com>\n"
    "MIME-Version: 1.0\n"
)
NOTICE = (
    "Comercio:\nKFC LINCOLN PLAZA\nFecha:\nMar 31, 2026, 22:09\nAMEX\n***5448\n"
    "Autorización:\n730927\nReferencia:\n262142250499\nTipo de Transacción:\nCOMPRA\n"
    "Monto:\n{amount}\n"
)


def notice(amount: str = "CRC 9,800.00", to: str = "juan@example.com", body: str = "") -> bytes:
    text = NOTICE.format(amount=amount) + body
    return (HEAD.format(to=to) + 'Content-Type: text/plain; charset="utf-8"\n\n' + text).encode()


def assert_valid(outcome: Outcome) -> None:
    """Whatever came in, what comes out is one well-formed outcome."""
    assert isinstance(outcome, Outcome)
    json.dumps(outcome.to_dict())
    if outcome.status == "transaction":
        tx = outcome.transaction
        assert tx.bank in BANKS and tx.bank == outcome.bank
        assert KINDS[tx.kind] == tx.direction
        assert isinstance(tx.amount, Decimal) and tx.amount > 0
        assert tx.amount.as_tuple().exponent == -2
        assert tx.currency in ("CRC", "USD")
        assert tx.occurred_at.utcoffset() == timedelta(hours=-6)
    else:
        assert outcome.status in ("ignored", "unparsed")
        assert outcome.transaction is None and outcome.reason
        assert outcome.status == "ignored" or outcome.bank in BANKS


def test_a_25_megabyte_body_is_read_quickly():
    legal = "Texto legal que se repite para ocupar espacio en el cuerpo del mensaje.\n"
    raw = notice(body=legal * (25 * 1024 * 1024 // len(legal)))
    assert len(raw) > 25 * 1024 * 1024
    started = time.perf_counter()
    outcome = parse_message(raw)
    assert time.perf_counter() - started < 20
    assert outcome.transaction.amount == Decimal("9800.00")


def test_a_25_megabyte_attachment_is_not_decoded():
    attachment = "QUFB" * 19 + "\n"
    raw = (
        HEAD.format(to="juan@example.com")
        + 'Content-Type: multipart/mixed; boundary="b"\n\n--b\n'
        + 'Content-Type: text/plain; charset="utf-8"\n\n'
        + NOTICE.format(amount="USD 12.00")
        + "--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
        + 'Content-Disposition: attachment; filename="estado.pdf"\n\n'
        + attachment * (25 * 1024 * 1024 // len(attachment))
        + "--b--\n"
    ).encode()
    started = time.perf_counter()
    outcome = parse_message(raw)
    assert time.perf_counter() - started < 20
    assert outcome.transaction.amount == Decimal("12.00")


def test_a_to_header_with_8000_addresses():
    to = ",\n ".join(f'"Persona {n}" <persona{n}@example.com>' for n in range(8000))
    started = time.perf_counter()
    outcome = parse_message(notice(to=to))
    assert time.perf_counter() - started < 5
    assert outcome.status == "transaction"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\n\n",
        b"\x00" * 1000,
        b"From: \n",
        b"garbage without any header",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x--",
        b"Subject: =?utf-8?b?####?=\nFrom: =?utf-8?q?=ZZ?= <a@b>\n\n",
        "str, not bytes",
        None,
        12,
    ],
)
def test_nonsense_input_is_ignored_not_raised(raw):
    outcome = parse_message(raw)
    assert_valid(outcome)
    assert outcome.status == "ignored"


def test_deep_nesting_and_thousands_of_parts_are_bounded():
    level = 'Content-Type: multipart/mixed; boundary="n{0}"\n\n--n{0}\n'
    nested = "".join(level.format(depth) for depth in range(500))
    many = "".join(f"--m\nContent-Type: text/plain\n\nparte {i}\n" for i in range(10_000))
    for body in (nested, 'Content-Type: multipart/mixed; boundary="m"\n\n' + many):
        started = time.perf_counter()
        assert_valid(parse_message((HEAD.format(to="a@b.cr") + body).encode()))
        assert time.perf_counter() - started < 5


def test_a_multipart_that_lost_its_boundary_parameter_is_still_read():
    raw = (FIXTURES / "promerica_purchase_alternative_utf8.eml").read_bytes()
    broken = raw.replace(b'alternative; boundary="===============1714220626=="', b"alternative")
    assert broken != raw
    assert parse_message(broken).transaction == parse_message(raw).transaction


def test_text_and_html_parts_that_disagree_are_not_believed():
    html = NOTICE.format(amount="CRC 98,000.00").replace("\n", "<br>")
    raw = (
        HEAD.format(to="juan@example.com")
        + 'Content-Type: multipart/alternative; boundary="b"\n\n'
        + '--b\nContent-Type: text/plain; charset="utf-8"\n\n'
        + NOTICE.format(amount="CRC 9,800.00")
        + '--b\nContent-Type: text/html; charset="utf-8"\n\n'
        + f"<html><body>{html}</body></html>\n--b--\n"
    ).encode()
    assert parse_message(raw).to_dict() == {
        "status": "unparsed",
        "reason": "conflicting_amounts",
        "bank": "bac",
    }


def test_a_bug_in_a_bank_parser_becomes_unparsed():
    def broken(mail):
        raise IndexError("bug")

    original = BANKS["bac"]
    register(replace(original, parse=broken))
    try:
        outcome = parse_message(notice())
    finally:
        register(original)
    assert (outcome.status, outcome.reason, outcome.bank) == ("unparsed", "parser_error", "bac")
    assert parse_message(notice()).status == "transaction"


INTERESTING = [
    b"=?",
    b"?=",
    b"=?utf-8?q?",
    b"--",
    b"\r\n",
    b"\n\n",
    b"=",
    b"<",
    b">",
    b"&nbsp;",
    b":",
    b"\xe2\x80\x8b",
    b"\x80",
    b"\xff\xfe",
    b"\x00",
    b"charset=",
    b"boundary=",
    b"base64",
    b"Content-Type: multipart/mixed; boundary=x\n",
    b"Content-Transfer-Encoding: base64\n",
    b"<table><tr><td>",
    b"CRC ",
    b"USD .00",
    b"1,234.5",
    b"Monto:",
    b"fue rechazada",
    b" / ",
]


@st.composite
def mutated_notifications(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(raw)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if operation == "flip" and at < len(raw):
            raw[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            raw[at:at] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del raw[at : at + draw(st.integers(1, 64))]
        elif operation == "truncate":
            del raw[at:]
        elif operation == "repeat":
            raw[at:at] = raw[at : at + draw(st.integers(1, 200))]
    return bytes(raw)


@given(mutated_notifications())
@settings(
    max_examples=400,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_mutated_notifications_always_give_a_valid_outcome(raw):
    assert_valid(parse_message(raw))
