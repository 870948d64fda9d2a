"""gevent support for the web process (wsgi.py): where a stream's request runs."""

from collections.abc import Callable


def streams_apart(wsgi_app: Callable) -> Callable:
    """WSGI middleware for gevent: a stream's request is handled in a greenlet of its own,
    which ends once the response is ready, and not in the connection's greenlet.

    A greenlet keeps, for as long as it lives, the memory its deepest call touched (each
    has its own stack of Python frames), and the connection's greenlet lives as long as the
    stream. Flask's dispatch, the login and the snapshot's rendering go deep; run apart,
    they leave the long-lived greenlet only the shallow loop that waits and writes: about
    5 KB less per open stream (bench/sse.py). Without gevent's patching (the app loaded
    before it, or no gevent at all) it returns the app unchanged.
    """
    from gevent import monkey, spawn

    if not monkey.is_module_patched("socket"):
        return wsgi_app

    def app(environ, start_response):
        if environ.get("PATH_INFO", "").endswith("/stream"):
            return spawn(wsgi_app, environ, start_response).get()
        return wsgi_app(environ, start_response)

    return app
