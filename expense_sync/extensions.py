"""Unbound extensions and accessors for Redis and the RQ queue."""

import redis
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from rq import Queue
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def init_redis(app) -> None:
    """Create the app's Redis client; connections are made lazily on first use."""
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], health_check_interval=30, socket_connect_timeout=5
    )


def get_redis() -> redis.Redis:
    """Return the current app's Redis client."""
    return current_app.extensions["redis"]


def get_queue() -> Queue:
    """Return the RQ queue that sync jobs go to."""
    return Queue(current_app.config["RQ_QUEUE"], connection=get_redis())
