"""Unbound extensions and accessors for Redis and the RQ queue."""

from urllib.parse import unquote, urlsplit

import redis
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel
from rq import Queue
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def own_or_404(model, **columns):
    """The current user's row of `model` with these column values, else 404: another
    user's row is as unknown as a missing one."""
    return db.one_or_404(db.select(model).filter_by(user_id=current_user.id, **columns))


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def redis_client(url: str, **options) -> redis.Redis:
    """A client for a REDIS_URL: redis://, rediss:// or unix:// as redis-py reads them, or
    redis+sentinel://[:password@]host:port[,host:port...]/service[/db], whose client asks
    the Sentinels for the service's current primary at every (re)connection, so a failover
    costs a reconnect. Flask-Limiter and rq-dashboard read the same form."""
    parts = urlsplit(url)
    if parts.scheme != "redis+sentinel":
        return redis.Redis.from_url(url, **options)
    credentials, _, hosts = parts.netloc.rpartition("@")
    sentinels = []
    for address in hosts.split(","):
        host, _, port = address.rpartition(":")
        sentinels.append((host, int(port)) if host else (port, 26379))
    service, _, db = parts.path.strip("/").partition("/")
    if not service:
        raise ValueError("a redis+sentinel:// URL names its service: .../<service>[/<db>]")
    user, _, password = (unquote(part) or None for part in credentials.partition(":"))
    # The credentials serve the Sentinels and the servers, as Flask-Limiter uses them.
    auth = {"username": user, "password": password}
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1, **auth},
    )
    return sentinel.master_for(service, db=int(db or 0), **auth, **options)


def init_redis(app) -> None:
    """Create the app's Redis client; connections are made lazily on first use."""
    # A few quick retries ride out a Redis restart; longer outages surface as errors.
    app.extensions["redis"] = redis_client(
        app.config["REDIS_URL"],
        health_check_interval=30,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1, base=0.05), retries=6),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def get_redis() -> redis.Redis:
    """Return the current app's Redis client."""
    return current_app.extensions["redis"]


def get_queue() -> Queue:
    """Return the RQ queue that sync jobs go to."""
    return Queue(current_app.config["RQ_QUEUE"], connection=get_redis())
