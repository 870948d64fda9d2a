"""Sync sessions: start, pause, resume, status, status.json, streams, history and details."""

from flask import Blueprint

bp = Blueprint("sync", __name__)

from . import stream, user_stream, views  # noqa: E402,F401  (routes register on bp)
