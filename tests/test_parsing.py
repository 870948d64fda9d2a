"""expense_sync.parsing: every sample and fixture email gives exactly its expected outcome."""

import json
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import FIXTURES, SHARED

from expense_sync.parsing import (
    BANKS,
    Outcome,
    Transaction,
    bank_sender_domains,
    iter_messages,
    parse_message,
)
from expense_sync.parsing.registry import bank_choices

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SETS = ("samples", "samples2")
# The shared samples name every ignored email's reason with three words; the parser names
# the rule that decided it. Each rule falls under one of the samples' words.
SAMPLE_REASON = {
    "declined": "declined",
    "own_card_payment": "own card payment",
    "zero_preauthorization": "zero amount",
    "untrusted_forward": "untrusted forward",
}


def expected_lines(folder: Path, emails: Path) -> list:
    if not (folder / "expected.jsonl").is_file():
        reason = f"{folder} is not there (the shared samples live outside this repository)"
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=reason))]
    lines = (folder / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        pytest.param(emails / entry["file"], entry, id=f"{folder.name}/{entry['file']}")
        for entry in map(json.loads, lines)
    ]


def as_line(path: Path, outcome: Outcome) -> dict:
    return {"file": path.name, "message_id": outcome.message_id, **outcome.to_dict()}


@pytest.fixture(scope="module")
def cli_lines() -> dict:
    """What `flask parse-emails --json` prints for each shared sample, by set and file name."""
    lines = {}
    for name in SAMPLE_SETS:
        emails = SHARED / name / "emails"
        if emails.is_dir():
            printed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "wsgi",
                    "parse-emails",
                    "--json",
                    str(emails),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for record in map(json.loads, printed.splitlines()):
                lines[(name, Path(record["file"]).name)] = record
    return lines


SAMPLE_PARAMS = [
    param
    for name in SAMPLE_SETS
    for param in expected_lines(SHARED / name, SHARED / name / "emails")
]


@pytest.mark.parametrize(("path", "expected"), SAMPLE_PARAMS)
def test_shared_sample_gives_its_expected_outcome_through_the_cli(path, expected, cli_lines):
    printed = dict(cli_lines[(path.parent.parent.name, path.name)], file=path.name)
    if printed["status"] == "ignored":
        printed["reason"] = SAMPLE_REASON.get(printed["reason"], "not a transaction")
    if printed["status"] == "unparsed":
        assert printed["bank"] and printed["reason"]
        printed = {key: printed[key] for key in ("file", "message_id", "status")}
        expected = {key: expected[key] for key in ("file", "message_id", "status")}
    assert printed == expected


@pytest.mark.parametrize(("path", "expected"), expected_lines(FIXTURES, FIXTURES))
def test_fixture_parses_to_its_expected_line(path, expected):
    assert as_line(path, parse_message(path.read_bytes())) == expected


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda path: path.name)
def test_line_endings_do_not_change_the_outcome(path):
    unix = path.read_bytes().replace(b"\r\n", b"\n")
    windows = unix.replace(b"\n", b"\r\n")
    assert parse_message(windows) == parse_message(unix)


def test_every_fixture_has_an_expected_line():
    listed = {json.loads(line)["file"] for line in (FIXTURES / "expected.jsonl").open()}
    assert listed == {path.name for path in FIXTURES.glob("*.eml")}


def fixture(name: str, **kwargs) -> Outcome:
    return parse_message((FIXTURES / name).read_bytes(), **kwargs)


def test_transaction_fields_are_exact_and_aware():
    outcome = fixture("bac_purchase_alternative_windows1252.eml")
    tx = outcome.transaction
    assert isinstance(tx, Transaction)
    assert tx.amount == Decimal("8250.50") and isinstance(tx.amount, Decimal)
    assert tx.occurred_at.utcoffset() == timedelta(hours=-6)
    assert outcome.bank == "bac"
    assert outcome.sender == "alerta@baccredomatic.com"
    assert outcome.subject == "Notificación de transacción SODA LA PENA 03-04-2026 - 09:15"
    assert outcome.sent_at.isoformat() == "2026-04-03T09:15:59-06:00"
    with pytest.raises(FrozenInstanceError):
        tx.amount = Decimal("1")  # type: ignore[misc]


def test_a_forward_gives_the_same_transaction_as_its_original():
    original = fixture("bac_purchase_forwarded_original.eml")
    forwarded = fixture("forward_gmail_trusted.eml")
    assert forwarded.transaction == original.transaction
    assert forwarded.subject.startswith("Fwd: ")
    assert forwarded.sender == "juan.perez@example.com"


def test_a_forward_counts_when_sent_from_one_of_the_mailbox_addresses():
    name = "forward_from_other_own_address.eml"
    assert fixture(name).reason == "untrusted_forward"
    trusted = fixture(name, own_addresses=["Juan <Juan.Trabajo@example.org>"])
    assert trusted.status == "transaction"
    assert trusted.transaction.bank == "davibank"
    assert fixture(name, own_addresses="juan.trabajo@example.org").status == "transaction"


def test_a_forward_from_and_to_a_stranger_is_not_trusted_by_a_sync():
    # From == To == the sender: enough without a known mailbox, never for a sync, which
    # knows its address (a stranger can send to himself and Bcc the user).
    name = "forward_gmail_trusted.eml"
    assert fixture(name).status == "transaction"
    assert fixture(name, own_addresses=["ana@example.cr"]).reason == "untrusted_forward"
    assert fixture(name, own_addresses=["juan.perez@example.com"]).status == "transaction"


def test_ignored_outcomes_still_name_the_bank_and_the_envelope():
    outcome = fixture("davibank_declined_latin1.eml")
    assert (outcome.status, outcome.reason, outcome.bank) == ("ignored", "declined", "davibank")
    assert outcome.to_dict() == {"status": "ignored", "reason": "declined"}
    assert outcome.message_id == "<DV20260418200200.1111@davibank.cr>"


def test_unparsed_outcome_shape():
    outcome = fixture("malformed_truncated_amount.eml")
    assert outcome.to_dict() == {
        "status": "unparsed",
        "reason": "truncated",
        "bank": "bac",
    }


def test_registry_has_every_bank_with_its_display_name_biggest_first():
    assert bank_choices() == [
        ("bac", "BAC San José"),
        ("bn", "Banco Nacional"),
        ("bcr", "BCR"),
        ("popular", "Banco Popular"),
        ("davibank", "Scotia Bank"),
        ("promerica", "Promerica"),
        ("mucap", "MUCAP"),
        ("mutual", "Grupo Mutual"),
        ("multimoney", "Multimoney"),
    ]
    assert set(BANKS) == {code for code, _ in bank_choices()}


def test_sender_domains_cover_old_and_new_senders():
    domains = bank_sender_domains()
    for expected in (
        "notificacionesbaccr.com",
        "baccredomatic.com",
        "baccredomatic.cr",
        "notificacionesbac.com",
        "davibank.cr",
        "scotiabank.com",
        "promerica.fi.cr",
        "davivienda.cr",
        "bacnet.net",
        "bncr.fi.cr",
        "bancobcr.com",
        "bancopopularinforma.fi.cr",
        "bpdc.fi.cr",
        "mucap.fi.cr",
        "grupomutual.fi.cr",
        "multimoney.com",
    ):
        assert expected in domains
    assert len(domains) == len(set(domains))


def test_iter_messages_reads_files_directories_and_mbox(tmp_path):
    first = (FIXTURES / "bac_statement.eml").read_bytes()
    second = (FIXTURES / "bac_zero_amount_crc_inline.eml").read_bytes()
    folder = tmp_path / "maildir-export"
    folder.mkdir()
    (folder / "b.eml").write_bytes(second)
    (folder / "a.eml").write_bytes(first)
    (folder / "notes.txt").write_text("not mail")
    body_line = b"From here on the body says From at a line start.\n"
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(
        b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + first + b"\n"
        b"From MAILER-DAEMON Thu Jan  1 00:00:01 2026\n" + second + b">" + body_line + b"\n"
    )
    single = tmp_path / "single.eml"
    single.write_bytes(first)

    found = list(iter_messages([folder, str(mbox), single]))

    assert [label for label, _ in found] == [
        str(folder / "a.eml"),
        str(folder / "b.eml"),
        f"{mbox}#1",
        f"{mbox}#2",
        str(single),
    ]
    assert found[2][1] == first
    assert found[3][1] == second + body_line
    assert parse_message(found[3][1]).reason == "zero_preauthorization"
