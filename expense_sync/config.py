"""Configuration: defaults, environment overrides (Heroku style) and production guards."""

import os
from pathlib import Path

DEV_SECRET_KEY = "dev-secret-key-not-for-production"
# A fixed Fernet key so development data stays readable across restarts; refused in production.
DEV_ENCRYPTION_KEY = "ZGV2LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24tMDAwMDA="
# OAuth2 sign-in to Gmail and Outlook (expense_sync/oauth): a provider without a client id
# shows no button; the endpoint URLs default to the providers' own.
OAUTH_VARIABLES = (
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "GOOGLE_AUTHORIZE_URL",
    "GOOGLE_TOKEN_URL",
    "MICROSOFT_CLIENT_ID",
    "MICROSOFT_CLIENT_SECRET",
    "MICROSOFT_TENANT",
    "MICROSOFT_AUTHORIZE_URL",
    "MICROSOFT_TOKEN_URL",
)


def database_url(url: str | None, instance_path: str) -> str:
    """Return a SQLAlchemy URL, accepting Heroku's `postgres://` form and defaulting to SQLite."""
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "expense_sync.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def from_environment(instance_path: str, env: dict[str, str] | None = None) -> dict:
    """Build the configuration mapping from environment variables."""
    env = os.environ if env is None else env
    mode = env.get("EXPENSE_SYNC_ENV", "development")
    keys = env.get("ENCRYPTION_KEYS", "")
    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    return {
        "ENV_MODE": mode,
        "SECRET_KEY": env.get("SECRET_KEY", DEV_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": database_url(env.get("DATABASE_URL"), instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_HEADERS_ENABLED": True,
        # With Redis away, limits are kept per process in memory instead of failing logins.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Only benchmarks turn limits off (10,000 streams from one login).
        "RATELIMIT_ENABLED": env.get("RATELIMIT_ENABLED", "true").lower() != "false",
        "ENCRYPTION_KEYS": [k.strip() for k in keys.split(",") if k.strip()]
        or [DEV_ENCRYPTION_KEY],
        "RQ_QUEUE": env.get("RQ_QUEUE", "sync"),
        # Seconds before RQ runs a killed job again; a dead job's account lock lasts 30 s,
        # but the same job takes its own lock back at once.
        "JOB_RETRY_INTERVALS": [
            int(s) for s in env.get("JOB_RETRY_INTERVALS", "10,30,60,120,300").split(",")
        ],
        "LOCAL_MAILBOX_ROOT": env.get("LOCAL_MAILBOX_ROOT", str(Path(instance_path) / "mailboxes")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": mode == "production",
        "REMEMBER_COOKIE_SECURE": mode == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PREFERRED_URL_SCHEME": "https" if mode == "production" else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        # Prometheus scrapers send `Authorization: Bearer <METRICS_TOKEN>`; unset: admins only.
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "LOG_FORMAT": env.get("LOG_FORMAT", "json" if mode == "production" else "text"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        # Password resets and registration links; without a server they go to the log.
        "MAIL_SERVER": env.get("MAIL_SERVER", ""),
        "MAIL_PORT": int(env.get("MAIL_PORT", "587")),
        "MAIL_USE_TLS": env.get("MAIL_USE_TLS", "true").lower() != "false",
        "MAIL_USERNAME": env.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD", ""),
        "MAIL_FROM": env.get("MAIL_FROM", "expense_sync <no-reply@expense-sync.cr>"),
        # Login attempts one address may make, whatever the account (a NAT, a test run).
        "LOGIN_LIMIT_PER_ADDRESS": env.get("LOGIN_LIMIT_PER_ADDRESS", "10 per minute"),
        # Open event streams per user and web process; past it the oldest is closed.
        "MAX_STREAMS_PER_USER": int(env.get("MAX_STREAMS_PER_USER", "20")),
        # A login or form body is a few kB: nothing legitimate comes near these.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 256 * 1024,
        **{name: env.get(name, "") for name in OAUTH_VARIABLES},
    }


def check_production(config: dict) -> None:
    """Refuse to run production with development secrets."""
    if config.get("ENV_MODE") != "production":
        return
    if config["SECRET_KEY"] in ("", DEV_SECRET_KEY) or len(config["SECRET_KEY"]) < 32:
        raise RuntimeError("SECRET_KEY must be set to a random value of at least 32 characters.")
    if DEV_ENCRYPTION_KEY in config["ENCRYPTION_KEYS"]:
        raise RuntimeError("ENCRYPTION_KEYS must be set (comma-separated Fernet keys).")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        raise RuntimeError("DATABASE_URL must point at PostgreSQL in production.")
    if not config["MAIL_SERVER"]:
        raise RuntimeError("MAIL_SERVER must be set in production: password resets need it.")
    if not config["RATELIMIT_ENABLED"]:
        raise RuntimeError("Rate limits protect logins in production: unset RATELIMIT_ENABLED.")
