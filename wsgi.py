"""WSGI entry point: gunicorn -k gevent imports `app` from here."""

from expense_sync import create_app

app = create_app()
