import mailbox

from expense_sync import crypto
from expense_sync.extensions import db
from expense_sync.models import EmailAccount, User


def test_create_user(app, runner):
    result = runner.invoke(
        args=["create-user", "Admin@Example.cr", "--password", "x" * 12, "--admin"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        assert (user.email, user.is_admin, str(user.id)) == (
            "admin@example.cr",
            True,
            result.output.strip(),
        )
    again = runner.invoke(args=["create-user", "admin@example.cr", "--password", "y" * 12])
    assert again.exit_code == 1 and "already exists" in again.output


def test_add_imap_account_with_password_from_environment(app, runner):
    runner.invoke(args=["create-user", "ana@example.cr", "--password", "x" * 12])
    result = runner.invoke(
        args=[
            "add-account",
            "--user",
            "ana@example.cr",
            "--bank",
            "davibank",
            "--address",
            "ana@example.cr",
            "--imap-host",
            "imap.example.cr",
            "--imap-port",
            "993",
            "--imap-user",
            "ana",
            "--folder",
            "Bancos",
        ],
        env={"EXPENSE_SYNC_IMAP_PASSWORD": "desde-el-entorno"},
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        account = db.session.get(EmailAccount, int(result.output.strip()))
        assert (account.bank, account.imap_security, account.folder) == (
            "davibank",
            "ssl",
            "Bancos",
        )
        assert crypto.decrypt(account.imap_password_encrypted) == "desde-el-entorno"


def test_add_account_prompts_for_password(app, runner):
    runner.invoke(args=["create-user", "ana@example.cr", "--password", "x" * 12])
    result = runner.invoke(
        args=[
            "add-account",
            "--user",
            "ana@example.cr",
            "--bank",
            "bac",
            "--address",
            "a@b.cr",
            "--imap-host",
            "h",
            "--imap-port",
            "143",
            "--imap-user",
            "u",
            "--imap-security",
            "starttls",
        ],
        input="tecleada\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        account = db.session.execute(db.select(EmailAccount)).scalar_one()
        assert crypto.decrypt(account.imap_password_encrypted) == "tecleada"


def test_add_mbox_account(app, runner, tmp_path):
    path = tmp_path / "takeout.mbox"
    mailbox.mbox(path).close()
    runner.invoke(args=["create-user", "ana@example.cr", "--password", "x" * 12])
    result = runner.invoke(
        args=[
            "add-account",
            "--user",
            "ana@example.cr",
            "--bank",
            "promerica",
            "--address",
            "a@b.cr",
            "--mbox",
            str(path),
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        account = db.session.execute(db.select(EmailAccount)).scalar_one()
        assert (account.source_kind, account.local_path) == ("mbox", str(path))


def test_add_account_errors(runner):
    result = runner.invoke(
        args=[
            "add-account",
            "--user",
            "nadie@example.cr",
            "--bank",
            "bac",
            "--address",
            "a@b.cr",
            "--imap-host",
            "h",
        ]
    )
    assert result.exit_code == 1 and "no user" in result.output
    runner.invoke(args=["create-user", "ana@example.cr", "--password", "x" * 12])
    result = runner.invoke(
        args=["add-account", "--user", "ana@example.cr", "--bank", "bac", "--address", "a@b.cr"]
    )
    assert result.exit_code == 2 and "exactly one of" in result.output


def test_export_expenses_csv_and_json(app, runner, tmp_path):
    import json
    from datetime import UTC, datetime

    from expense_sync.models import Expense

    runner.invoke(args=["create-user", "ana@example.cr", "--password", "x" * 12])
    mailbox.mbox(tmp_path / "m.mbox").close()
    runner.invoke(
        args=[
            "add-account",
            "--user",
            "ana@example.cr",
            "--bank",
            "bac",
            "--address",
            "ana@example.cr",
            "--mbox",
            str(tmp_path / "m.mbox"),
        ]
    )
    with app.app_context():
        for i, merchant in enumerate(['=HYPERLINK("x")', "CAFÉ BRITT"]):
            db.session.add(
                Expense(
                    user_id=1,
                    email_account_id=1,
                    message_key=f"<m{i}@x>",
                    bank="bac",
                    kind="purchase",
                    direction="out",
                    amount_cents=7200050 + i,
                    currency="CRC",
                    merchant=merchant,
                    occurred_at=datetime(2026, 3, 16, 14, 27, tzinfo=UTC),
                    card_last4="5149",
                    authorization="123456",
                    reference=f"R{i}",
                )
            )
        db.session.commit()
    csv_out = runner.invoke(args=["export-expenses", "--user", "ana@example.cr"]).output
    lines = csv_out.lstrip("\ufeff").splitlines()
    assert csv_out.startswith("\ufeff")
    assert lines[0] == (
        "fecha,banco,cuenta,tipo,direccion,monto,moneda,comercio,categoria,"
        "nota,tarjeta,autorizacion,referencia,origen,corregido,comercio_original"
    )
    assert lines[1] == (
        "2026-03-16T08:27:00-06:00,BAC San José,ana@example.cr,Compra,Salida,"
        '72000.50,CRC,"\'=HYPERLINK(""x"")",,,5149,123456,R0,Leído del correo,,'
    )
    assert "CAFÉ BRITT" in lines[2] and "72000.51" in lines[2]
    json_out = runner.invoke(
        args=["export-expenses", "--user", "ana@example.cr", "--format", "json"]
    ).output
    records = [json.loads(line) for line in json_out.splitlines()]
    assert [r["monto"] for r in records] == ["72000.50", "72000.51"]
