"""The capacity floor of bench/sse.py: the least one gunicorn gevent worker holds per stream.

    gunicorn -c gunicorn.conf.py --workers 1 bench.sse_floor_app:app

A bare WSGI callable, no Flask: each stream writes one small event, then waits on a gevent
Event with a 15 s heartbeat, as the product's streams wait on their inbox. What it costs per
stream is what gunicorn, gevent and the kernel's socket take whatever the app does.
"""

import gevent.event

EVENT = b'id: 0-0\nevent: widget\ndata: <div id="sync-progress" data-published-at=""></div>\n\n'


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])

    def stream():
        yield EVENT
        wake = gevent.event.Event()
        while True:
            wake.wait(15)
            yield b": heartbeat\n\n"

    return stream()
