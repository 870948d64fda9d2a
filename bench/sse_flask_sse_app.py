"""The comparison point of bench/sse.py: Flask-SSE's blueprint, alone, on the same Redis.

    REDIS_URL=redis://... gunicorn -k gevent --workers 1 bench.sse_flask_sse_app:app

Flask-SSE (a benchmark-only dependency, not the product's) subscribes one Redis pub/sub
connection per client and forwards each message as it comes; no login, no snapshot, no
rendering. Clients connect to /stream?channel=<name>; publishers call
``sse.publish(data, channel=name)`` inside an app context.
"""

import os

from flask import Flask
from flask_sse import sse

app = Flask(__name__)
app.config["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
app.register_blueprint(sse, url_prefix="/stream")


@app.get("/healthz")
def healthz():
    return "ok"
