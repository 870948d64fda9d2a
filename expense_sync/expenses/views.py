"""Pages of the expenses feature; every query is scoped to the logged-in user."""

from collections.abc import Iterator

from flask import Response, abort, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required

from ..export import csv_chunks, xlsx_bytes
from ..extensions import db, own_or_404
from ..formatting import KINDS
from ..models import ORIGINS, Expense, SyncSession, now_utc
from ..parsing.dates import COSTA_RICA
from . import bp, queries
from .filters import CURRENCIES, DIRECTIONS, parse_filters, payment_means

PER_PAGE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.before_request
@login_required
def _require_login():
    """Every expenses page needs a logged-in user."""


def own_expense(expense_id: int) -> Expense:
    """The current user's expense, or 404 (also for another user's id)."""
    return own_or_404(Expense, id=expense_id, deleted_at=None)


def own_sync(token: str | None) -> SyncSession | None:
    """The current user's sync for a `sync` filter; 404 for anyone else's or an unknown one."""
    if token is None:
        return None
    session = db.session.execute(
        db.select(SyncSession).filter_by(token=token, user_id=current_user.id)
    ).scalar_one_or_none()
    if session is None:
        abort(404)
    return session


@bp.get("/expenses")
def index():
    """The user's expenses, newest first, with filters, totals per currency and a chart."""
    filters = parse_filters(request.args)
    sync_session = own_sync(filters.sync)
    page = db.paginate(
        queries.expense_select(filters, current_user.id), per_page=PER_PAGE, error_out=False
    )
    return render_template(
        "expenses/index.html",
        page=page,
        filters=filters,
        sync_session=sync_session,
        totals=queries.totals(filters, current_user.id),
        charts=queries.monthly_charts(filters, current_user.id, now_utc()),
        accounts=current_user.accounts,
        months=queries.month_options(current_user.id),
        banks=payment_means(),
        currencies=CURRENCIES,
        kinds=KINDS,
        directions=DIRECTIONS,
    )


@bp.get("/expenses.csv")
def export_csv():
    """The filtered expenses as a streamed CSV (UTF-8 with a BOM, exact amounts)."""
    filters = parse_filters(request.args)
    own_sync(filters.sync)
    expenses = _streamed(queries.expense_select(filters, current_user.id))
    today = now_utc().astimezone(COSTA_RICA).date()
    return Response(
        stream_with_context(csv_chunks(expenses)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="gastos-{today}.csv"'},
    )


@bp.get("/expenses.xlsx")
def export_xlsx():
    """The filtered expenses as an Excel workbook (numbers and dates typed, any locale)."""
    filters = parse_filters(request.args)
    own_sync(filters.sync)
    expenses = db.session.scalars(
        queries.expense_select(filters, current_user.id).execution_options(yield_per=500)
    )
    today = now_utc().astimezone(COSTA_RICA).date()
    return Response(
        xlsx_bytes(expenses),
        mimetype=XLSX,
        headers={"Content-Disposition": f'attachment; filename="gastos-{today}.xlsx"'},
    )


def _streamed(select) -> Iterator[Expense]:
    # Runs once the response streams: Flask tears the view's session down when the view
    # returns, so a query started there would be cut off. yield_per keeps memory flat.
    yield from db.session.scalars(select.execution_options(yield_per=500))


@bp.get("/expenses/unreadable")
def unreadable():
    """The old address of the review queue, kept for bookmarks."""
    return redirect(url_for("review.index"), 301)


@bp.get("/expenses/<int:expense_id>")
def detail(expense_id: int):
    """One expense with every field and the sync that found it."""
    expense = own_expense(expense_id)
    sync_session = None
    if expense.sync_session_id is not None:
        sync_session = db.session.get(SyncSession, expense.sync_session_id)
        if sync_session.user_id != current_user.id:  # ingest never mixes users; stay sure
            sync_session = None
    return render_template(
        "expenses/detail.html", expense=expense, sync_session=sync_session, origins=ORIGINS
    )
