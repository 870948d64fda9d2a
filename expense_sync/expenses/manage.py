"""Adding an expense by hand, correcting one, deleting one; always the logged-in user's."""

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from ..extensions import db
from ..models import CASH, now_utc
from ..parsing.dates import COSTA_RICA
from . import bp, records
from .forms import CATEGORIES, ExpenseForm, NoteForm
from .views import own_expense


@bp.route("/expenses/new", methods=["GET", "POST"])
def new():
    """Add an expense no mail told of, such as one paid in cash."""
    form = ExpenseForm(
        data={
            "occurred_at": now_utc()
            .astimezone(COSTA_RICA)
            .replace(tzinfo=None, second=0, microsecond=0),
            "currency": "CRC",
            "bank": CASH,
        }
    )
    if form.validate_on_submit():
        expense = records.from_form(form, current_user.id)
        db.session.add(expense)
        db.session.commit()
        flash("Gasto agregado.", "success")
        return redirect(url_for("expenses.detail", expense_id=expense.id))
    return render_template("expenses/form.html", form=form, expense=None, categories=CATEGORIES)


@bp.route("/expenses/<int:expense_id>/edit", methods=["GET", "POST"])
def edit(expense_id: int):
    """Correct an expense: all of one the user stated, merchant and notes of one read from mail."""
    expense = own_expense(expense_id)
    form_class = NoteForm if expense.from_mail else ExpenseForm
    form = form_class(data=records.form_defaults(expense))
    if form.validate_on_submit():
        if expense.from_mail:
            records.note(expense, form)
        else:
            records.state(expense, form)
        db.session.commit()
        flash("Cambios guardados.", "success")
        return redirect(url_for("expenses.detail", expense_id=expense.id))
    return render_template("expenses/form.html", form=form, expense=expense, categories=CATEGORIES)


@bp.post("/expenses/<int:expense_id>/delete")
def delete(expense_id: int):
    """Delete an expense after the user confirmed it."""
    expense = own_expense(expense_id)
    records.delete(expense)
    db.session.commit()
    flash("Gasto eliminado.", "info")
    return redirect(url_for("expenses.index"))
