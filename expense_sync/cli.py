"""Command line: create-user, add-account, parse-emails, sync, export-expenses, demo."""

import os

import click
from flask import Flask
from flask.cli import with_appcontext

from .accounts import apply_settings
from .auth import create_user, find_user
from .extensions import db
from .models import BANKS, EmailAccount

BANK_CHOICES = click.Choice(sorted(BANKS))


def register(app: Flask) -> None:
    for command in (create_user_command, add_account_command, rotate_keys_command,
                    seed_demo_command):
        app.cli.add_command(command)


def _user_or_exit(email: str):
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--password", required=True, help="The user's login password.")
@click.option("--admin", is_flag=True, help="Let the user reach the admin pages.")
def create_user_command(email: str, password: str, admin: bool) -> None:
    """Create a user who can log in."""
    if find_user(email):
        raise click.ClickException(f"a user with email {email} already exists")
    user = create_user(email, password, admin=admin)
    db.session.commit()
    click.echo(user.id)


@click.command("add-account")
@with_appcontext
@click.option("--user", "user_email", required=True, help="Owner's email.")
@click.option("--bank", required=True, type=BANK_CHOICES)
@click.option("--address", required=True, help="The mailbox's email address.")
@click.option("--imap-host")
@click.option("--imap-port", type=click.IntRange(1, 65535))
@click.option("--imap-user")
@click.option("--imap-security", type=click.Choice(["ssl", "starttls", "none"]), default="ssl",
              show_default=True)
@click.option("--imap-password", help="Or set EXPENSE_SYNC_IMAP_PASSWORD; prompted otherwise.")
@click.option("--folder", default="INBOX", show_default=True)
@click.option("--mbox", type=click.Path(exists=True, dir_okay=False), help="A local mbox file.")
@click.option("--maildir", type=click.Path(exists=True, file_okay=False), help="A Maildir.")
def add_account_command(user_email, bank, address, imap_host, imap_port, imap_user,
                        imap_security, imap_password, folder, mbox, maildir) -> None:
    """Add an email account (IMAP, mbox or Maildir) and print its id."""
    user = _user_or_exit(user_email)
    sources = [name for name, value in (("imap", imap_host), ("mbox", mbox),
                                        ("maildir", maildir)) if value]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --imap-host, --mbox or --maildir")
    data = {"bank": bank, "address": address, "source_kind": sources[0], "folder": folder}
    if sources[0] == "imap":
        if not imap_port or not imap_user:
            raise click.UsageError("--imap-host needs --imap-port and --imap-user")
        password = imap_password or os.environ.get("EXPENSE_SYNC_IMAP_PASSWORD")
        if not password:
            password = click.prompt("IMAP password", hide_input=True)
        data |= {"imap_host": imap_host, "imap_port": imap_port, "imap_user": imap_user,
                 "imap_security": imap_security, "imap_password": password}
    else:
        data["local_path"] = os.path.abspath(mbox or maildir)
    account = EmailAccount(user_id=user.id)
    apply_settings(account, data)
    db.session.add(account)
    db.session.commit()
    click.echo(account.id)


@click.command("rotate-encryption-keys")
@with_appcontext
def rotate_keys_command() -> None:
    """Re-encrypt every stored IMAP password with the first key of ENCRYPTION_KEYS."""
    from .crypto import rotate

    accounts = db.session.scalars(
        db.select(EmailAccount).where(EmailAccount.imap_password_encrypted.is_not(None))
    ).all()
    for account in accounts:
        account.imap_password_encrypted = rotate(account.imap_password_encrypted)
    db.session.commit()
    click.echo(f"{len(accounts)} passwords re-encrypted")


DEMO_EMAIL = "demo@expense-sync.cr"
DEMO_PASSWORD = "demo-expense-sync"


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo user with three accounts backed by generated local mailboxes."""
    from flask import current_app

    from .demo import build_demo_mailboxes

    user = find_user(DEMO_EMAIL) or create_user(DEMO_EMAIL, DEMO_PASSWORD)
    db.session.flush()
    root = os.path.join(current_app.config["LOCAL_MAILBOX_ROOT"], "demo")
    existing = {account.local_path for account in user.accounts}
    for spec in build_demo_mailboxes(root):
        path = os.path.abspath(spec["maildir"])
        if path in existing:
            continue
        account = EmailAccount(user_id=user.id)
        apply_settings(account, {"bank": spec["bank"], "address": spec["address"],
                                 "source_kind": "maildir", "local_path": path})
        db.session.add(account)
    db.session.commit()
    click.echo(f"demo user {DEMO_EMAIL} with {len(user.accounts)} accounts")
