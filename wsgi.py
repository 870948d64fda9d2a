"""WSGI entry point: gunicorn -k gevent imports `app` from here."""

from expense_sync import create_app
from expense_sync.gevent_support import streams_apart

app = create_app()
app.wsgi_app = streams_apart(app.wsgi_app)
