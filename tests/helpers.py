"""Test helpers shared by test modules (conftest.py holds only fixtures)."""

import re
from pathlib import Path

from expense_sync.extensions import db

SHARED_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def csrf_token(client, path="/login") -> str:
    """Read the CSRF token the page puts in its meta tag (valid for this client's session)."""
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


class AuthActions:
    def __init__(self, app, client):
        self._app = app
        self._client = client

    def create(self, email="ana@example.cr", password="contraseña-segura", admin=False):
        from expense_sync.auth import create_user

        with self._app.app_context():
            user = create_user(email, password, admin=admin)
            db.session.commit()
            return user.id

    def login(self, email="ana@example.cr", password="contraseña-segura"):
        token = csrf_token(self._client)
        return self._client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self):
        token = csrf_token(self._client, "/accounts")
        return self._client.post("/logout", data={"csrf_token": token})


def identity(bank, kind, amount, currency, reference, occurred_at) -> tuple:
    """What makes a transaction itself: two withdrawals of the same amount differ in time.

    Without a reference the time counts to the minute, as the app's transaction key: a
    forward of a notice dated by its Date header shows that date to the minute only.
    """
    when = str(occurred_at) if reference else str(occurred_at)[:16]
    return tuple(str(field) for field in (bank, kind, amount, currency, reference, when))


def sse_events(response):
    """Parse a streamed body into (id, event, data) tuples and comments, as they come."""
    for chunk in response.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if not text:
            continue  # the stream yields an empty chunk after each event
        assert text.endswith("\n\n"), text
        if text.startswith(":"):
            yield ("comment", text.strip())
            continue
        fields = {"id": None, "event": None, "data": []}
        for line in text.strip("\n").split("\n"):
            name, _, value = line.partition(": ")
            if name == "data":
                fields["data"].append(value)
            else:
                fields[name] = value
        # An event with no name is a "message" (the widget fragment).
        yield (fields["id"], fields["event"] or "message", "\n".join(fields["data"]))
