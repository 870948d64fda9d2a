"""expense_sync.ingest: one identity per bank transaction, so a forward counts once."""

from expense_sync.ingest import transaction_key
from expense_sync.parsing import parse_message

NOTICE = (
    "Su Tarjeta de Débito BP terminada en 6429 fue utilizada en LAVACAR EL BRILLO     "
    "HEREDIA   CR por 7000.00 CRC . Si no reconoce esta transacción, favor llamar al 2000-2222."
)
ORIGINAL = (
    "From: Banco Popular <popularvisa@bancopopularinforma.fi.cr>\n"
    "To: Ana Mora <ana.mora@example.com>\n"
    "Subject: =?utf-8?q?Notificaci=C3=B3n_de_Transacci=C3=B3n?=\n"
    "Date: Mon, 17 Aug 2026 17:43:27 -0600\n"
    "Message-ID: <popular.1@bancopopularinforma.fi.cr>\n"
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n\n" + NOTICE + "\n"
)
# Gmail's block shows the original's Date to the minute only.
FORWARD = (
    "From: Ana Mora <ana.mora@example.com>\n"
    "To: Ana Mora <ana.mora@example.com>\n"
    "Subject: Fwd: =?utf-8?q?Notificaci=C3=B3n_de_Transacci=C3=B3n?=\n"
    "Date: Mon, 17 Aug 2026 19:02:11 -0600\n"
    "Message-ID: <fwd.1@mail.gmail.com>\n"
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n\n"
    "---------- Forwarded message ---------\n"
    "From: Banco Popular <popularvisa@bancopopularinforma.fi.cr>\n"
    "Date: Mon, Aug 17, 2026 at 5:43 PM\n"
    "Subject: Notificación de Transacción\n"
    "To: <ana.mora@example.com>\n\n" + NOTICE + "\n"
)


def test_a_notice_without_reference_and_its_forward_have_one_identity():
    original = parse_message(ORIGINAL.encode())
    forward = parse_message(FORWARD.encode(), own_addresses=["ana.mora@example.com"])
    assert original.transaction.reference is None
    assert original.transaction.occurred_at != forward.transaction.occurred_at  # 27 s apart
    assert transaction_key(original) == transaction_key(forward)


def test_two_purchases_a_minute_apart_stay_two():
    first = parse_message(ORIGINAL.encode())
    later = parse_message(ORIGINAL.replace("17:43:27", "17:44:05").encode())
    assert transaction_key(first) != transaction_key(later)


def test_reference_and_authorization_identify_when_the_notice_has_them():
    raw = ORIGINAL.replace(
        NOTICE,
        (
            "El Banco Popular le informa de la transacción realizada en FERRETERIA EL MARTILLO el "
            "14/07/2026 a las 10:28, con la tarjeta VISA INTERNACIONAL A 4402, Auth # 339102, "
            "Ref # 618400012345, por 18,200.00 Colones."
        ),
    )
    assert transaction_key(parse_message(raw.encode())) == "popular:618400012345:339102"
