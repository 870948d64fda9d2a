"""Command line: create-user, add-account, parse-emails, sync, reparse, export-expenses, demo."""

import json
import os
import sys
import time

import click
from flask import Flask
from flask.cli import with_appcontext

from .accounts import apply_settings
from .auth import create_user, find_user
from .extensions import db
from .forms import user_folder
from .mailboxes.providers import CUSTOM, PROVIDERS
from .models import EmailAccount, bank_names
from .states import SessionStatus


class BankChoice(click.Choice):
    """The registry's bank codes, read each time click asks: a bank module added is offered."""

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(bank_names())

    @choices.setter
    def choices(self, _fixed) -> None:
        pass  # click.Choice.__init__ stores a fixed tuple; the registry is the list


def register(app: Flask) -> None:
    for command in (
        create_user_command,
        add_account_command,
        rotate_keys_command,
        seed_demo_command,
        sync_command,
        reparse_command,
        parse_emails_command,
        export_expenses_command,
    ):
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
@click.option("--bank", required=True, type=BankChoice())
@click.option("--address", required=True, help="The mailbox's email address.")
@click.option(
    "--provider",
    type=click.Choice([*PROVIDERS, CUSTOM]),
    default=CUSTOM,
    show_default=True,
    help="Fill in the provider's IMAP server; the user is ADDR.",
)
@click.option("--imap-host")
@click.option("--imap-port", type=click.IntRange(1, 65535))
@click.option("--imap-user")
@click.option(
    "--imap-security",
    type=click.Choice(["ssl", "starttls", "none"]),
    default="ssl",
    show_default=True,
)
@click.option("--imap-password", help="Or set EXPENSE_SYNC_IMAP_PASSWORD; prompted otherwise.")
@click.option("--folder", default="INBOX", show_default=True)
@click.option("--mbox", type=click.Path(exists=True, dir_okay=False), help="A local mbox file.")
@click.option("--maildir", type=click.Path(exists=True, file_okay=False), help="A Maildir.")
def add_account_command(
    user_email,
    bank,
    address,
    provider,
    imap_host,
    imap_port,
    imap_user,
    imap_security,
    imap_password,
    folder,
    mbox,
    maildir,
) -> None:
    """Add an email account (IMAP, mbox or Maildir) and print its id."""
    user = _user_or_exit(user_email)
    preset = PROVIDERS.get(provider)
    if preset:
        imap_host, imap_port = imap_host or preset.host, imap_port or preset.port
        imap_user = imap_user or address
        if not preset.passwords:
            click.echo(
                f"warning: {preset.name} refuses passwords over IMAP; connect this "
                'account from the web with "Conectar con Microsoft".',
                err=True,
            )
    sources = [
        name for name, value in (("imap", imap_host), ("mbox", mbox), ("maildir", maildir)) if value
    ]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --imap-host, --mbox or --maildir")
    data = {"bank": bank, "address": address, "source_kind": sources[0], "folder": folder}
    if sources[0] == "imap":
        if not imap_port or not imap_user:
            raise click.UsageError("--imap-host needs --imap-port and --imap-user")
        password = imap_password or os.environ.get("EXPENSE_SYNC_IMAP_PASSWORD")
        if not password:
            password = click.prompt("IMAP password", hide_input=True)
        data |= {
            "imap_host": imap_host,
            "imap_port": imap_port,
            "imap_user": imap_user,
            "imap_security": imap_security,
            "imap_password": password,
        }
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
    """Re-encrypt stored IMAP passwords and OAuth2 tokens with the first ENCRYPTION_KEYS key."""
    from .crypto import rotate

    secrets = (
        "imap_password_encrypted",
        "oauth_refresh_token_encrypted",
        "oauth_access_token_encrypted",
    )
    accounts = db.session.scalars(
        db.select(EmailAccount).where(
            db.or_(*(getattr(EmailAccount, name).is_not(None) for name in secrets))
        )
    ).all()
    for account in accounts:
        for name in secrets:
            if getattr(account, name) is not None:
                setattr(account, name, rotate(getattr(account, name)))
    db.session.commit()
    click.echo(f"{len(accounts)} accounts' secrets re-encrypted")


DEMO_EMAIL = "demo@expense-sync.cr"
DEMO_PASSWORD = "demo-expense-sync"
DEMO_AUTO_SYNC_MINUTES = 15


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo user with four accounts backed by generated local mailboxes."""
    from datetime import timedelta

    from flask import current_app

    from .demo import build_demo_mailboxes
    from .dispatch import set_interval
    from .models import now_utc

    user = find_user(DEMO_EMAIL) or create_user(DEMO_EMAIL, DEMO_PASSWORD)
    db.session.flush()
    # The demo's mailboxes live in its user's own folder, as a user's local sources must.
    root = user_folder(current_app.config["LOCAL_MAILBOX_ROOT"], user.id)
    existing = {(account.bank, account.address) for account in user.accounts}
    for spec in build_demo_mailboxes(str(root)):
        path = os.path.abspath(spec["maildir"])
        if (spec["bank"], spec["address"]) in existing:
            continue
        account = EmailAccount(user_id=user.id)
        apply_settings(
            account,
            {
                "bank": spec["bank"],
                "address": spec["address"],
                "source_kind": "maildir",
                "local_path": path,
            },
        )
        db.session.add(account)
    # The demo shows scheduled syncs too: every 15 minutes, the first half a minute from now.
    set_interval(user, DEMO_AUTO_SYNC_MINUTES)
    user.next_auto_sync_at = now_utc() + timedelta(seconds=30)
    db.session.commit()
    click.echo(
        f"demo user {DEMO_EMAIL} with {len(user.accounts)} accounts; "
        f"automatic sync every {DEMO_AUTO_SYNC_MINUTES} min, first in 30 s"
    )


@click.command("sync")
@click.option("--user", "user_email", required=True, help="Whose accounts to sync.")
@click.option("--wait", is_flag=True, help="Show progress until the sync ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the final state as JSON.")
@with_appcontext
def sync_command(user_email: str, wait: bool, as_json: bool) -> None:
    """Start a sync of all the user's accounts; exit 1 if it fails."""
    _start_sync(_user_or_exit(user_email), wait=wait, as_json=as_json)


@click.command("reparse")
@click.option("--user", "user_email", required=True, help="Whose mail to read again.")
@click.option("--wait", is_flag=True, help="Show progress until the sync ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the final state as JSON.")
@with_appcontext
def reparse_command(user_email: str, wait: bool, as_json: bool) -> None:
    """Refetch and re-read all the user's mail with the current parsers; exit 1 if it fails."""
    from .sync import control

    user = _user_or_exit(user_email)
    if control.active_session(user.id):
        # Its accounts were counted with their old checkpoints; marking them now would
        # change what that sync reads halfway.
        raise click.ClickException(f"a sync of {user_email} is running; wait for it to end")
    for account in user.accounts:
        account.parser_version = 0  # older than any parser: the next sync reads it again
    db.session.commit()
    _start_sync(user, wait=wait, as_json=as_json)


def _start_sync(user, *, wait: bool, as_json: bool) -> None:
    from .sync import control

    try:
        session = control.start(user, trigger="cli")
    except control.NoAccounts:
        raise click.ClickException(f"{user.email} has no email accounts") from None
    except control.QueueUnavailable:
        raise click.ClickException("the job queue (Redis) is not reachable") from None
    if not (wait or as_json):
        click.echo(session.token)
        return
    state = _wait_for(session, show=wait and not as_json)
    if as_json:
        click.echo(json.dumps(state))
    sys.exit(0 if state["status"] == SessionStatus.COMPLETED else 1)


def _wait_for(session, *, show: bool) -> dict:
    from rq import Worker

    from .extensions import get_queue, get_redis
    from .progress import TERMINAL_STATES
    from .sync import control

    if not Worker.all(connection=get_redis(), queue=get_queue()):
        click.echo("warning: no worker is running; start one with `python worker.py`", err=True)
    while True:
        db.session.expire_all()
        db.session.refresh(session)
        state = control.state(session)
        if show:
            _draw(state)
        if state["status"] in TERMINAL_STATES:
            if show:
                click.echo(err=True)
                for account in state["accounts"]:
                    if account["error_message"]:
                        click.echo(f"  {account['bank']}: {account['error_message']}", err=True)
            return state
        time.sleep(0.5)


def _draw(state: dict) -> None:
    width = 30
    filled = width * state["progress_percentage"] // 100
    eta = state["time_remaining_seconds"]
    line = (
        f"[{'#' * filled}{'-' * (width - filled)}] {state['progress_percentage']:3d}% "
        f"({state['processed_emails']}/{state['total_emails']}) "
        f"{state['detected_expenses']} gastos, {state['error_count']} errores"
        + (f", ~{eta}s" if eta is not None else "")
        + f" [{state['status']}]"
    )
    if sys.stderr.isatty():
        click.echo("\r" + line.ljust(100), nl=False, err=True)
    else:
        click.echo(line, err=True)


@click.command("parse-emails")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option("--own-address", multiple=True, help="The mailbox's address (trusts forwards).")
def parse_emails_command(paths, as_json: bool, own_address) -> None:
    """Parse .eml files, directories of them, or mbox files, and print each outcome."""
    from .parsing import iter_messages, parse_message

    for label, raw in iter_messages(paths):
        outcome = parse_message(raw, own_addresses=own_address)
        if as_json:
            record = {"file": label, "message_id": outcome.message_id, **outcome.to_dict()}
            click.echo(json.dumps(record, ensure_ascii=False))
        elif outcome.transaction:
            tx = outcome.transaction
            click.echo(
                f"{label}: {tx.bank} {tx.kind} {tx.amount} {tx.currency} "
                f"{tx.merchant or ''} {tx.occurred_at.isoformat()}"
            )
        else:
            click.echo(f"{label}: {outcome.status} ({outcome.reason})")


@click.command("export-expenses")
@click.option("--user", "user_email", required=True)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@with_appcontext
def export_expenses_command(user_email: str, fmt: str) -> None:
    """Print every stored expense of a user as CSV or JSON lines."""
    from .export import csv_chunks, json_lines
    from .models import Expense

    user = _user_or_exit(user_email)
    expenses = db.session.scalars(
        db.select(Expense)
        .where(Expense.user_id == user.id, Expense.deleted_at.is_(None))
        .order_by(Expense.occurred_at, Expense.id)
        .execution_options(yield_per=1000)
    )
    chunks = csv_chunks(expenses) if fmt == "csv" else json_lines(expenses)
    for chunk in chunks:
        click.echo(chunk, nl=False)
