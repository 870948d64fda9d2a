"""expense_sync: bank notification emails turned into a live record of expenses."""

from pathlib import Path

from flask import Flask

from . import config as config_module
from . import metrics
from .extensions import csrf, db, init_redis, limiter, login_manager, migrate
from .logs import configure_logging


def create_app(config: dict | None = None) -> Flask:
    """Create and wire the application: config, extensions, blueprints, CLI, errors."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.from_mapping(config_module.from_environment(app.instance_path))
    if config:
        app.config.from_mapping(config)
    config_module.check_production(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)  # the SQLite default lives here
    configure_logging(app)

    register_extensions(app)
    register_blueprints(app)

    from . import cli, web

    cli.register(app)
    web.register(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions to this app."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(_root() / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    init_redis(app)
    metrics.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Register one blueprint per feature."""
    from . import accounts, admin, auth, expenses, health, profile, review, schedule, sync

    app.register_blueprint(auth.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(schedule.bp)
    app.register_blueprint(sync.bp)
    app.register_blueprint(expenses.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(health.bp)
    admin.register(app)


def _root() -> Path:
    return Path(__file__).resolve().parent.parent
