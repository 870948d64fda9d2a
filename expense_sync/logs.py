"""Logging: one JSON object per line in production, readable lines in development.

Every line written during a request carries its request id (the proxy's X-Request-ID, or a
new one), which the response echoes; every line of an RQ job carries the job id. Secrets are
redacted by a filter on our handler before anything is written.
"""

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from rq import get_current_job

REDACTED = "[REDACTED]"
_SECRET = r"[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|authorization|cookie)[\w-]*"
_SECRET_KEY = re.compile(rf"(?i)^{_SECRET}$")
_PATTERNS = [
    # password=..., "token": "...", Authorization: Bearer ...
    (
        re.compile(
            rf"(?i)\b({_SECRET})(['\"]?\s*[=:]\s*)(?:(?:bearer|basic)\s+)?(['\"]?)"
            r"[^\s'\",;&)}]+"
        ),
        rf"\1\2\3{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    # IMAP LOGIN user password
    (re.compile(r"\bLOGIN\s+(\S+)\s+\S+"), rf"LOGIN \1 {REDACTED}"),
]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "job_id",
    "context",
}


# Control characters in a logged value could forge a line of its own (a CR or LF in an IMAP
# host, a URL): values given as %-arguments are escaped; the format strings are ours.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def escape_controls(value: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


def _escaped(value):
    """A %-argument that cannot break a line: numbers stay numbers (for %d), the rest text."""
    if value is None or isinstance(value, int | float):
        return value
    return escape_controls(value if isinstance(value, str) else str(value))


def redact(text: str) -> str:
    """Replace anything that looks like a secret's value."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrite the record itself, so every handler after ours gets the redacted text too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _escaped(value) for key, value in record.args.items()}
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: logging would report it; never lose the line here
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        for key in vars(record).keys() - _STANDARD:  # values given with extra={...}
            value = getattr(record, key)
            if _SECRET_KEY.match(key):
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class AddContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        job = get_current_job()
        record.job_id = job.id if job else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            if getattr(record, key, None):
                entry[key] = getattr(record, key)
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            value
            for value in (getattr(record, "request_id", None), getattr(record, "job_id", None))
            if value
        ]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(app: Flask) -> None:
    """Route every log line through one redacting handler on the root logger."""
    as_json = app.config.get("LOG_FORMAT") == "json" or app.config.get("ENV_MODE") == "production"
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    handler.addFilter(AddContext())
    handler.addFilter(RedactSecrets())
    handler.name = "expense_sync"
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == handler.name]:  # create_app run again
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    app.logger.removeHandler(default_handler)  # it would write every app line twice
    # IMAP protocol traces hold whole emails (and, from some servers, credentials).
    logging.getLogger("imapclient").setLevel(max(logging.INFO, root.level))
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-ID", "")
    # Only ids that cannot forge a log line or a header; anything else gets a fresh one.
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _echo_request_id(response):
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response
