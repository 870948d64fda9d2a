"""Charset sanity: a body labelled with the wrong charset reads as its bank wrote it.

Real fixture notices are re-encoded (UTF-8, windows-1252, ISO-8859-1) and then labelled
with a charset they are not in, the MIME kept valid by the email package. Each must give
the very text, and the very transaction, of the same message labelled correctly. Text
labelled correctly, in any charset, must read exactly as the declared charset says.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import FIXTURES, SHARED_SAMPLES

from expense_sync.parsing import parse_message
from expense_sync.parsing.charsets import codec_for, decode_bytes
from expense_sync.parsing.mime import decode_text, read_message

TESTS = Path(__file__).resolve().parent
SAMPLES = SHARED_SAMPLES / "emails"

# Notices with accented labels or merchants, text and HTML, in their banks' charsets.
SEEDS = (
    "promerica_purchase_text_latin1_usd_setiembre.eml",
    "bac_purchase_inline_latin1_stray_space.eml",
    "scotiabank_purchase_windows1252.eml",
    "davivienda_autorizaciones_usd.eml",
    "bac_purchase_two_pairs_per_line.eml",
    "bac_purchase_alternative_windows1252.eml",
    "bac_purchase_html_spanish_month.eml",
    "davibank_purchase_html_base64_crlf.eml",
    "davivienda_autorizaciones_crc.eml",
)
ENCODINGS = ("utf-8", "windows-1252", "iso-8859-1")
LABELS = (
    *ENCODINGS,
    "us-ascii",
    "iso-2022-jp",
    "koi8-r",
    "windows-1251",
    "cp850",
    "mac-roman",
    "shift_jis",
    "big5",
    "utf-16",
    "x-unknown-charset",
)
TRANSFERS = ("quoted-printable", "base64")


def text_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_maintype() == "text"]


def rebuilt(name: str, encoding: str, label: str, transfer: str) -> bytes | None:
    """The fixture with its text parts encoded in `encoding` but declared as `label`.

    None when the notice holds a character that `encoding` cannot write.
    """
    message = message_from_bytes((FIXTURES / name).read_bytes(), policy=policy.default)
    for part in text_parts(message):
        text = part.get_content()
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            return None
        subtype = part.get_content_subtype()
        part.set_content(text, subtype=subtype, charset=encoding, cte=transfer)
        part.set_param("charset", label)  # the label changes, the bytes do not
    return message.as_bytes()


def cases() -> list[tuple[str, str, str, str]]:
    """Every seed, in every encoding it fits, under every label that reads it otherwise."""
    found = []
    for name in SEEDS:
        for encoding in ENCODINGS:
            if rebuilt(name, encoding, encoding, TRANSFERS[0]) is None:
                continue
            for label in LABELS:
                if codec_for(label) != codec_for(encoding):
                    found.extend((name, encoding, label, transfer) for transfer in TRANSFERS)
    return found


@pytest.mark.parametrize("name", SEEDS)
def test_the_seeds_rebuilt_with_their_own_label_read_as_the_fixture(name):
    original = parse_message((FIXTURES / name).read_bytes()).transaction
    assert original is not None and original.merchant
    for encoding in ENCODINGS:
        for transfer in TRANSFERS:
            raw = rebuilt(name, encoding, encoding, transfer)
            if raw is not None:
                assert parse_message(raw).transaction == original


@pytest.mark.parametrize(("name", "encoding", "label", "transfer"), cases())
def test_a_wrong_label_reads_like_the_right_one(name, encoding, label, transfer):
    right = parse_message(rebuilt(name, encoding, encoding, transfer)).transaction
    raw = rebuilt(name, encoding, label, transfer)
    outcome = parse_message(raw)
    assert outcome.status == "transaction", outcome.reason
    tx = outcome.transaction
    assert (tx.amount, tx.currency, tx.merchant) == (right.amount, right.currency, right.merchant)
    assert (tx.reference, tx.authorization) == (right.reference, right.authorization)
    assert tx.occurred_at == right.occurred_at
    assert tx == right
    # Not just the fields the template reads: the whole text, accents included.
    correct = read_message(rebuilt(name, encoding, encoding, transfer))
    mail = read_message(raw)
    assert (mail.plain, mail.html) == (correct.plain, correct.html)


def test_the_reported_case_keeps_reference_and_authorization():
    # The issue: Latin-1 labelled iso-2022-jp lost both, and the merchant's accents.
    name = "bac_purchase_inline_latin1_stray_space.eml"
    raw = rebuilt(name, "iso-8859-1", "iso-2022-jp", "quoted-printable")
    tx = parse_message(raw).transaction
    assert (tx.merchant, tx.reference, tx.authorization) == (
        "CAFÉ LA ESQUINA",
        "622112345678",
        "004455",
    )
    assert "Autorización" in read_message(raw).plain


def _fixture_and_sample_parts() -> list[tuple[str, bytes, str | None]]:
    paths = sorted(FIXTURES.glob("*.eml")) + sorted(SAMPLES.glob("*.eml"))
    parts = []
    for path in paths:
        message = message_from_bytes(path.read_bytes(), policy=policy.compat32)
        for part in message.walk():
            if part.get_content_maintype() == "text":
                data = part.get_payload(decode=True) or b""
                parts.append((path.name, data, part.get_content_charset()))
    return parts


def test_every_fixture_and_sample_body_decodes_as_before():
    parts = _fixture_and_sample_parts()
    assert len(parts) > 100
    for name, data, label in parts:
        assert decode_text(data, label) == decode_bytes(data, label), name


NOTICE = (
    "Comercio: CAFÉ PEÑA / Ciudad y país: SAN JOSÉ / Autorización: 004455 / "
    "Referencia: 622112345678 / Tipo de Transacción: COMPRA / Monto: CRC 9,800.00"
)


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("utf-8", NOTICE + " “Gracias” — ¿dudas? €"),
        ("windows-1252", NOTICE + " “Gracias” — ¿dudas? €"),
        ("iso-8859-1", NOTICE + " ¿dudas? SÃO PAULO"),
        ("iso-8859-15", NOTICE + " €"),
        ("cp850", NOTICE),
        ("mac-roman", NOTICE),
        ("utf-16", NOTICE),
        ("utf-8", NOTICE + " SÃO PAULO / CRÊPERIE / MÜNCHEN / Nº 5 / 1ª / ½"),
        ("windows-1252", NOTICE + " SÃO PAULO / CRÊPERIE / Château / naïve"),
        ("utf-8", "VISAカードご利用のお知らせ。金額：5,000円。Уважаемый клиент VISAкарта"),
        ("koi8-r", "Уважаемый клиент, по карте VISA списано 500 руб. Спасибо."),
        ("koi8-r", "Оплата VISAкартой в OXXOмаркет: 500 руб."),
        ("windows-1251", "Уважаемый клиент, по карте VISA списано 500 руб."),
        ("shift_jis", "VISAカードご利用のお知らせ。金額：5,000円。"),
        ("euc-jp", "VISAカードご利用のお知らせ。金額：5,000円。"),
        ("big5", "您的信用卡交易通知：金額 500 元。"),
        ("iso-8859-2", "Płatność kartą zakończona. Kwota: 500 zł. Łódź."),
        ("windows-1250", "Platba kartou proběhla úspěšně. Částka: 500 Kč. Děkujeme."),
        ("euc-kr", "고객님의 카드 승인 내역: 금액 5,000원"),
    ],
)
def test_correctly_labelled_text_is_never_fixed(label, text):
    data = text.encode(codec_for(label) or label)
    assert decode_text(data, label) == decode_bytes(data, label) == text


@pytest.mark.parametrize("label", ["us-ascii", "utf-8", "iso-2022-jp", "utf-16", "x-unknown"])
def test_pure_ascii_bodies_decode_as_before(label):
    jis = "カード".encode("iso-2022-jp") + b" Comercio: KFC / Monto: CRC 9,800.00"
    assert jis.isascii()
    assert decode_text(jis, label) == decode_bytes(jis, label)
    assert decode_text(jis, "iso-2022-jp") == "カード Comercio: KFC / Monto: CRC 9,800.00"


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_one_mislabelled_part_does_not_change_a_correct_one(transfer):
    message = message_from_bytes(
        (FIXTURES / "bac_purchase_alternative_windows1252.eml").read_bytes(),
        policy=policy.default,
    )
    plain, html = text_parts(message)
    right = parse_message(message.as_bytes())
    plain_text, html_text = plain.get_content(), html.get_content()
    plain.set_content(plain_text, charset="windows-1252", cte=transfer)
    plain.set_param("charset", "iso-2022-jp")
    html.set_content(html_text, subtype="html", charset="utf-8", cte=transfer)
    mail = read_message(message.as_bytes())
    assert "Autorización" in mail.plain
    assert (mail.plain, mail.html) == (plain_text, html_text)
    assert parse_message(message.as_bytes()).transaction == right.transaction
