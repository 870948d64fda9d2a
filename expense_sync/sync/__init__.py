"""Sync sessions: start, pause, resume, status, status.json, stream, history and details."""

from flask import Blueprint

bp = Blueprint("sync", __name__)

from . import stream, views  # noqa: E402,F401  (routes register on bp)
