"""The review queue's pages and actions; every query is scoped to the logged-in user."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from .. import ingest
from ..expenses import records
from ..expenses.forms import CATEGORIES, ExpenseForm
from ..extensions import db, own_or_404
from ..formatting import reason_label
from ..models import Expense, UnreadableEmail, now_utc
from ..parsing.dates import COSTA_RICA
from ..parsing.guess import guess
from . import bp, queries

PER_PAGE = 50


@bp.before_request
@login_required
def _require_login():
    """Every review page needs a logged-in user."""


@bp.app_context_processor
def _pending_review():
    """The navigation's count of mail waiting for a decision, computed only where shown."""
    return {"pending_review": lambda: queries.pending_count(current_user.id)}


def own_mail(mail_id: int) -> UnreadableEmail:
    """The current user's kept mail, or 404 (also for another user's id)."""
    return own_or_404(UnreadableEmail, id=mail_id)


@bp.get("")
def index():
    """The mail waiting for a decision, or the ignored or decided ones when asked for."""
    shown = request.args.get("show", "pending")
    if shown not in queries.LISTS:
        shown = "pending"
    page = db.paginate(
        queries.mail_select(current_user.id, shown), per_page=PER_PAGE, error_out=False
    )
    return render_template(
        "review/index.html",
        page=page,
        shown=shown,
        lists=queries.LISTS,
        counts=queries.counts(current_user.id),
    )


@bp.get("/<int:mail_id>")
def detail(mail_id: int):
    """One mail, its text shown safely, with a form pre-filled by a generic reading."""
    mail = own_mail(mail_id)
    expense = db.session.scalar(
        db.select(Expense).filter_by(
            user_id=current_user.id,
            email_account_id=mail.email_account_id,
            message_key=mail.message_key,
            deleted_at=None,
        )
    )
    return render_template(
        "review/detail.html",
        mail=mail,
        form=_register_form(mail),
        categories=CATEGORIES,
        expense=expense,
    )


@bp.post("/<int:mail_id>/register")
def register(mail_id: int):
    """Register the mail as the expense the user confirmed."""
    mail = own_mail(mail_id)
    if mail.decision is not None:
        return _decided_already(mail)
    form = ExpenseForm()
    if not form.validate():
        return render_template(
            "review/detail.html", mail=mail, form=form, categories=CATEGORIES, expense=None
        ), 422
    expense = records.from_form(form, current_user.id, mail)
    db.session.add(expense)
    _decide(mail, "registered")
    try:
        db.session.commit()
    except IntegrityError:  # registered meanwhile (another tab), or read by a new parser
        db.session.rollback()
        flash("Este correo ya tiene un gasto registrado.", "error")
        return redirect(url_for("review.detail", mail_id=mail.id))
    flash("Gasto registrado.", "success")
    return redirect(url_for("expenses.detail", expense_id=expense.id))


@bp.post("/<int:mail_id>/dismiss")
def dismiss(mail_id: int):
    """Say the mail moves no money: it stays, out of the queue."""
    mail = own_mail(mail_id)
    if mail.decision is not None:
        return _decided_already(mail)
    _decide(mail, "dismissed")
    db.session.commit()
    flash("Listo: el correo quedó fuera de la lista por revisar.", "success")
    return redirect(url_for("review.index"))


@bp.post("/<int:mail_id>/restore")
def restore(mail_id: int):
    """Put a dismissed mail back in the queue."""
    mail = own_mail(mail_id)
    if mail.decision == "dismissed":
        _decide(mail, None)
        db.session.commit()
    return redirect(url_for("review.detail", mail_id=mail.id))


@bp.post("/<int:mail_id>/reread")
def reread(mail_id: int):
    """Read the mail again with today's parsers."""
    mail = own_mail(mail_id)
    if mail.decision is not None:
        return _decided_already(mail)
    outcome = ingest.reread(mail)
    db.session.commit()
    if outcome is None:
        flash(
            "Este correo no se guardó completo; se volverá a leer en la próxima "
            "sincronización completa.",
            "info",
        )
    elif outcome.status == "transaction":
        flash("El correo ya se puede leer: su gasto se agregó a la lista.", "success")
        return redirect(url_for("review.index"))
    else:
        flash(f"El correo sigue sin poder leerse: {reason_label(outcome.reason)}.", "info")
    return redirect(
        url_for("review.detail", mail_id=mail.id) if mail in db.session else url_for("review.index")
    )


@bp.post("/reread")
def reread_all():
    """Read every pending mail again, after an update of the parsers."""
    read = total = 0
    for mail in db.session.scalars(queries.rereadable(current_user.id)).all():
        outcome = ingest.reread(mail)
        total += 1
        read += outcome is not None and outcome.status == "transaction"
    db.session.commit()
    flash(f"Se volvieron a leer {total} correos; {read} ya se pudieron leer.", "success")
    return redirect(url_for("review.index"))


def _decided_already(mail: UnreadableEmail):
    # Another tab decided meanwhile: a second decision would contradict the first.
    flash("Ya se decidió qué hacer con este correo.", "info")
    return redirect(url_for("review.detail", mail_id=mail.id))


def _decide(mail: UnreadableEmail, decision: str | None) -> None:
    mail.decision = decision
    mail.decided_at = now_utc() if decision else None


def _register_form(mail: UnreadableEmail) -> ExpenseForm:
    """The register form filled with what a generic reader finds in the mail."""
    found = guess(mail.subject, mail.text, mail.sent_at)
    when = found.occurred_at or mail.sent_at or now_utc()
    return ExpenseForm(
        formdata=None,
        data={
            "occurred_at": when.astimezone(COSTA_RICA).replace(
                tzinfo=None, second=0, microsecond=0
            ),
            "amount": f"{found.amount:.2f}" if found.amount is not None else "",
            "currency": found.currency or "CRC",
            "kind": found.kind,
            "bank": mail.bank or mail.email_account.bank,
            "merchant": found.merchant,
        },
    )
