"""Expenses the user states or corrects: typed by hand, registered from a mail, edited, deleted."""

from ..extensions import db
from ..models import CASH, Expense, UnreadableEmail, now_utc
from ..parsing.dates import COSTA_RICA
from ..parsing.model import KINDS as DIRECTIONS
from .forms import ExpenseForm, NoteForm, read_amount


def from_form(form: ExpenseForm, user_id: int, mail: UnreadableEmail | None = None) -> Expense:
    """A new expense with what the form says; from a mail it keeps the mail's identity.

    The mail's account and message key make a later parse of the same mail add nothing
    (the expense table's unique key on them), so a registered notice counts once.
    """
    expense = Expense(user_id=user_id, origin="review" if mail else "manual")
    if mail is not None:
        expense.email_account_id = mail.email_account_id
        expense.message_key = mail.message_key
        expense.sync_session_id = mail.sync_session_id
    state(expense, form)
    return expense


def state(expense: Expense, form: ExpenseForm) -> None:
    """Copy every field of the form onto an expense the user stated (not one read from mail)."""
    expense.occurred_at = form.local_occurred_at
    expense.amount_cents = int(read_amount(form.amount.data).scaleb(2))
    expense.currency = form.currency.data
    expense.kind = form.kind.data
    expense.direction = DIRECTIONS[form.kind.data]
    expense.bank = form.bank.data
    note(expense, form)


def note(expense: Expense, form: NoteForm) -> None:
    """Set merchant, category and note; what the mail said of the merchant is kept."""
    merchant = (form.merchant.data or "").strip() or None
    if expense.from_mail and merchant != expense.merchant:
        originals = dict(expense.original_values or {})
        originals.setdefault("merchant", expense.merchant)
        if originals["merchant"] == merchant:  # back to what the mail said
            del originals["merchant"]
        expense.original_values = originals or None
        expense.corrected_at = now_utc() if originals else None
    expense.merchant = merchant
    expense.category = (form.category.data or "").strip() or None
    expense.note = (form.note.data or "").strip() or None


def delete(expense: Expense) -> None:
    """Remove an expense from every list; one read from mail stays as a tombstone.

    A registered one sends its mail back to the review queue: the user decides again.
    """
    if expense.from_mail:
        expense.deleted_at = now_utc()
        return
    if expense.origin == "review":
        db.session.execute(
            db.update(UnreadableEmail)
            .where(
                UnreadableEmail.email_account_id == expense.email_account_id,
                UnreadableEmail.message_key == expense.message_key,
            )
            .values(decision=None, decided_at=None)
        )
    db.session.delete(expense)


def form_defaults(expense: Expense) -> dict:
    """The form's values for an existing expense, in Costa Rica time."""
    return {
        "occurred_at": expense.occurred_at.astimezone(COSTA_RICA).replace(tzinfo=None),
        "amount": f"{expense.amount:.2f}",
        "currency": expense.currency,
        "kind": expense.kind,
        "bank": expense.bank or CASH,
        "merchant": expense.merchant,
        "category": expense.category,
        "note": expense.note,
    }
