"""Por revisar: bank mail that gave no expense, for the user to register, dismiss or reread."""

from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/review")

from . import views  # noqa: E402,F401  (routes register on bp)
