"""Unbound extensions and accessors for Redis and the RQ queue."""

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


def init_redis(app) -> None:
    """Create the app's Redis client; connections are made lazily on first use."""
    # A few quick retries ride out a Redis restart; longer outages surface as errors.
    app.extensions["redis"] = redis.Redis.from_url(
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
