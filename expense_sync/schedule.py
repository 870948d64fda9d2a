"""bp: the "Sincronizar automáticamente" setting, shown on the accounts page."""

from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from .dispatch import set_interval
from .extensions import db
from .formatting import local_datetime
from .models import now_utc
from .parsing.dates import COSTA_RICA

bp = Blueprint("schedule", __name__, url_prefix="/accounts")

# Minutes between scheduled syncs ("" is off), as the setting offers them.
CHOICES = {"": "Apagado", "15": "Cada 15 min", "60": "Cada hora", "360": "Cada 6 horas"}
bp.add_app_template_global(CHOICES, "auto_sync_choices")  # templates/accounts/_auto_sync.html


@bp.before_request
@login_required
def _require_login():
    """The setting belongs to a logged-in user."""


@bp.app_template_filter("next_sync")
def next_sync(value: datetime | None) -> str:
    """When the next scheduled sync runs, e.g. "hoy 14:30" or "mañana 02:15"."""
    if value is None:
        return ""
    now = now_utc()
    if value <= now:
        return "en un momento"
    day = value.astimezone(COSTA_RICA).date()
    today = now.astimezone(COSTA_RICA).date()
    time = local_datetime(value, "HH:mm")
    if day == today:
        return f"hoy {time}"
    if day == today + timedelta(days=1):
        return f"mañana {time}"
    return local_datetime(value, "d MMM, HH:mm")


@bp.post("/auto_sync")
def update():
    """Turn scheduled syncs on or off, or change how often they run."""
    choice = request.form.get("auto_sync_minutes", "")
    if choice not in CHOICES:
        flash("Elija una de las opciones de sincronización automática.", "error")
        return redirect(url_for("accounts.index"))
    minutes = int(choice) if choice else None
    if minutes != current_user.auto_sync_minutes:
        set_interval(current_user, minutes)
        db.session.commit()
    if minutes:
        flash(
            f"Sincronización automática {CHOICES[choice].lower()}. "
            f"Próxima: {next_sync(current_user.next_auto_sync_at)}.",
            "success",
        )
    else:
        flash("Sincronización automática apagada.", "success")
    return redirect(url_for("accounts.index"))
