"""Shared fixtures: real Redis, real Dovecot, the app on SQLite and PostgreSQL, a client."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import AuthActions  # noqa: E402
from servers import DovecotServer, RedisServer, kill_tree  # noqa: E402

from expense_sync import create_app  # noqa: E402
from expense_sync.extensions import db  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis: TEST_REDIS_URL when given, otherwise our own redis-server."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def dovecot():
    """A real Dovecot IMAP server on a free port, shared by the session's tests."""
    with DovecotServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_dovecot():
    """The same with SSL and STARTTLS ports under the tests' own CA, shared likewise."""
    with DovecotServer(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url():
    """A migrated, empty PostgreSQL schema for the session (TEST_DATABASE_URL); with several
    test processes (pytest-xdist), each has a database of its own beside it."""
    url = _worker_database(os.environ["TEST_DATABASE_URL"])
    app = create_app({"SQLALCHEMY_DATABASE_URI": _driver_url(url)})
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        _upgrade()
        db.engine.dispose()
    return _driver_url(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated, empty SQLite file; each test copies it (migrating took ~40 ms a test)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    with app.app_context():
        _upgrade()
        db.engine.dispose()
    return path


def _worker_database(url: str) -> str:
    """TEST_DATABASE_URL itself, or in xdist's worker gw1 the database <name>_gw1 of the same
    server (created when missing: the tests' role may create databases)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = sa.engine.make_url(_driver_url(url))
    name = f"{base.database}_{worker}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _driver_url(url: str) -> str:
    from expense_sync.config import database_url

    return database_url(url, "")


def _upgrade():
    from flask_migrate import upgrade

    upgrade(directory=str(Path(__file__).resolve().parents[1] / "migrations"))


@pytest.fixture(params=BACKENDS)
def app(request, redis_url, redis_client, tmp_path):
    """The app with a fresh database (a migrated SQLite file's copy, or truncated PostgreSQL)."""
    if request.param == "postgresql":
        uri = request.getfixturevalue("postgres_url")
    else:
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "test.sqlite3")
        uri = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": uri,
            "REDIS_URL": redis_url,
            "RATELIMIT_STORAGE_URI": redis_url,
            "LOCAL_MAILBOX_ROOT": str(tmp_path),
            "SERVER_NAME": "localhost",
        }
    )
    with app.app_context():
        if request.param == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
    yield app
    if "event_hub" in app.extensions:
        app.extensions["event_hub"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def auth(app, client):
    return AuthActions(app, client)


@pytest.fixture
def own_redis():
    """A Redis of the test's own, which it may stop and start."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def stack(app, own_redis):
    """The app on its own Redis, and a way to start real `python worker.py` processes."""
    stack_app = create_app(
        {**app.config, "REDIS_URL": own_redis.url, "RATELIMIT_STORAGE_URI": own_redis.url}
    )
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": own_redis.url,
        "JOB_RETRY_INTERVALS": "0",
        "EXPENSE_SYNC_ENV": "test",
    }
    workers = []

    def start_worker(**overrides: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env={**env, **overrides},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        workers.append(process)
        return process

    stack_app.start_worker = start_worker
    yield stack_app
    for process in workers:
        kill_tree(process.pid)
