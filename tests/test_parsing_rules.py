"""The building blocks of parsing: amounts, dates, charsets, headers and text clean-up."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expense_sync.parsing.amounts import find_money, parse_amount
from expense_sync.parsing.charsets import b64decode_lenient, codec_for, decode_bytes
from expense_sync.parsing.dates import COSTA_RICA, parse_datetime
from expense_sync.parsing.headers import address, addresses, content_type, header_text
from expense_sync.parsing.text import Body, clean_line, fold


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("72,000.00", "72000.00"),
        ("2.500,00", "2500.00"),
        ("12,500.00", "12500.00"),
        ("139,763", "139763.00"),
        ("15", "15.00"),
        (".00", "0.00"),
        ("0.00", "0.00"),
        ("27939,00", "27939.00"),
        ("1,234,567.89", "1234567.89"),
        ("1.234.567,89", "1234567.89"),
        ("49.99", "49.99"),
        ("1 234 567,89", "1234567.89"),
    ],
)
def test_amounts_follow_the_last_separator_rule(written, value):
    assert parse_amount(written) == Decimal(value)


@pytest.mark.parametrize(
    "written",
    ["1,5", "12,50,00", "1.234,567.00", "1,234,56", "12345,678", "1..000", "", "٣٤", "1,0000"],
)
def test_ambiguous_amounts_are_refused(written):
    assert parse_amount(written) is None


@pytest.mark.parametrize(
    ("text", "money"),
    [
        ("CRC 72,000.00", ("72000.00", "CRC")),
        ("USD 15", ("15.00", "USD")),
        ("₡ 139,763", ("139763.00", "CRC")),
        ("¢8,250.50", ("8250.50", "CRC")),
        ("$ 12.50", ("12.50", "USD")),
        ("2.500,00 CRC, por concepto", ("2500.00", "CRC")),
        ("4,000.00 Colones por concepto", ("4000.00", "CRC")),
        ("276.56 Dólares", ("276.56", "USD")),
        ("10.00 DOLARES", ("10.00", "USD")),
        ("5,000.00 COLONES", ("5000.00", "CRC")),
        ("USD .00", ("0.00", "USD")),
        ("₡1\u00a0234,50", ("1234.50", "CRC")),
    ],
)
def test_money_reads_codes_symbols_and_words_before_or_after(text, money):
    amount, currency = find_money(clean_line(text))
    assert (str(amount), currency) == money


def test_money_never_falls_through_to_another_number():
    assert find_money("CRC 1,5 y luego CRC 2,000.00") is None
    assert find_money("CRC 1 000.000,00") is None  # never "one colón"
    assert find_money("USD 15 2026") is None
    assert find_money("16,915.00", "CRC") == (Decimal("16915.00"), "CRC")
    assert find_money("USD 16.00", "CRC") is None  # label and value disagree


@given(st.decimals(min_value=0, max_value=10**12, places=2), st.booleans())
@settings(max_examples=300, deadline=None, database=None)
def test_any_formatted_amount_reads_back_exactly(value, european):
    written = f"{value:,.2f}"
    if european:
        written = written.replace(",", "_").replace(".", ",").replace("_", ".")
    assert parse_amount(written) == value


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Mar 16, 2026, 08:27", "2026-03-16T08:27:00"),
        ("Sep 4, 2026 , 12:20", "2026-09-04T12:20:00"),
        ("Abr 3, 2026, 09:15", "2026-04-03T09:15:00"),
        ("Dic 24, 2025, 19:45", "2025-12-24T19:45:00"),
        ("22 jun 2026 / 16:15", "2026-06-22T16:15:00"),
        ("5 set 2026 / 09:05", "2026-09-05T09:05:00"),
        ("20-07-2026 a las 14:50:00 horas", "2026-07-20T14:50:00"),
        ("14/11/2025 a las 12:29 PM.", "2025-11-14T12:29:00"),
        ("2/6/2026 a las 12:05 AM", "2026-06-02T00:05:00"),
        ("06/11/2025 18:10:02", "2025-11-06T18:10:02"),
        ("Notificación de transacción SPOTIFY 09-02-2026 - 04:23", "2026-02-09T04:23:00"),
        ("lunes, 20 de julio de 2026 14:50", "2026-07-20T14:50:00"),
        ("Tue, May 12, 2026 at 6:44 PM", "2026-05-12T18:44:00"),
    ],
)
def test_dates_in_every_written_shape(text, iso):
    when = parse_datetime(text)
    assert when.tzinfo is COSTA_RICA
    assert when.isoformat() == iso + "-06:00"


@pytest.mark.parametrize("text", ["31/02/2026 10:00", "Foo 3, 2026", "sin fecha", "99/99/9999"])
def test_impossible_dates_are_none(text):
    assert parse_datetime(text) is None


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("iso-8859-1", "cp1252"),
        ("ISO_8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ('"windows-1252"', "cp1252"),
        ("UTF8", "utf-8"),
        ("x-unknown-foo", None),
        ("base64", None),
        ("unicode_escape", None),
        ("utf-7", None),
        ("windows-1250", "cp1250"),
        ("", None),
    ],
)
def test_charset_labels_map_the_way_browsers_do(label, codec):
    assert codec_for(label) == codec


def test_decoding_keeps_the_euro_sign_and_survives_unknown_labels():
    assert decode_bytes(b"\x80 5", "iso-8859-1") == "€ 5"
    assert decode_bytes("Peña".encode(), "x-klingon") == "Peña"
    assert decode_bytes(b"Pe\xf1a", "x-klingon") == "Peña"


def test_base64_with_padding_in_the_middle_and_noise():
    assert b64decode_lenient(b"SGVsbG8=\nIFdvcmxk\n") == b"Hello World"
    assert b64decode_lenient(b"SGVs bG8*") == b"Hello"
    assert b64decode_lenient(b"SGVsbG8") == b"Hello"


def test_headers_decode_encoded_words_and_raw_bytes():
    assert header_text("=?utf-8?q?Notificaci=C3=B3n?= de\n Transferencia") == (
        "Notificación de Transferencia"
    )
    assert header_text("=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=") == "éé"
    assert header_text("Caf\udcc3\udca9") == "Café"  # raw UTF-8 bytes in a header
    assert header_text("=?x-bogus?q?caf=E9?=") == "café"


def test_addresses_skip_display_names_and_comments():
    assert address('"alerta@baccredomatic.com" <Someone@Evil.Example>') == "someone@evil.example"
    assert address("alerta@baccredomatic.com (BAC)") == "alerta@baccredomatic.com"
    assert address('"') is None
    assert addresses(["(c):", 'a <A@x.cr>, "b, c" <b@y.cr>, d@z.cr']) == [
        "a@x.cr",
        "b@y.cr",
        "d@z.cr",
    ]


def test_content_type_tolerates_broken_parameters():
    assert content_type("text/plain; name*") == ("text/plain", {})
    assert content_type('TEXT/HTML; Charset="UTF-8"; x') == ("text/html", {"charset": "UTF-8"})
    assert content_type("nonsense") == ("text/plain", {})
    assert content_type("text/plain; charset*=utf-8''latin%31")[1] == {"charset": "latin1"}


def test_text_is_normalised_before_matching():
    assert clean_line("Autoriza\u200bcio\u0301n:\xa0\t 12") == "Autorización: 12"
    assert fold("Número de autorización") == "Numero de autorizacion"
    body = Body.from_html(
        "<p>Monto:&nbsp;<b>CRC</b> 5</p><p>Fecha:</p>x<table><tr><td>a</td><td>b</td></table>"
    )
    assert body.lines == ["Monto: CRC 5", "Fecha:", "x", "a b"]


def test_header_date_falls_back_to_utc_only_when_it_has_no_zone():
    from expense_sync.parsing.headers import header_date

    assert header_date("Mon, 20 Jul 2026 14:50:00 -0600").utcoffset() == timedelta(hours=-6)
    assert header_date("Mon, 20 Jul 2026 14:50:00") == datetime(2026, 7, 20, 14, 50, tzinfo=UTC)
    assert header_date("yesterday") is None
