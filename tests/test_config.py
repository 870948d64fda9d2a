import pytest

from expense_sync import create_app
from expense_sync.config import DEV_SECRET_KEY, check_production, database_url, from_environment


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        (None, "sqlite:////srv/instance/expense_sync.sqlite3"),
    ],
)
def test_database_url(url, expected):
    assert database_url(url, "/srv/instance") == expected


def test_production_refuses_default_secrets():
    config = from_environment(
        "/i", {"EXPENSE_SYNC_ENV": "production", "DATABASE_URL": "postgres://h/db"}
    )
    assert config["SECRET_KEY"] == DEV_SECRET_KEY
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        check_production(config)
    config["SECRET_KEY"] = "s" * 40
    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS"):
        check_production(config)


def test_production_config_is_accepted_and_secure(monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("EXPENSE_SYNC_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()}")
    monkeypatch.setenv("DATABASE_URL", "postgres://h/db")
    with pytest.raises(RuntimeError, match="MAIL_SERVER"):
        create_app()
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.cr")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_key_rotation_keeps_old_tokens_readable(app):
    from cryptography.fernet import Fernet

    from expense_sync import crypto

    with app.app_context():
        old = crypto.encrypt("secreto")
        app.config["ENCRYPTION_KEYS"] = [
            Fernet.generate_key().decode(),
            *app.config["ENCRYPTION_KEYS"],
        ]
        assert crypto.decrypt(old) == "secreto"
        rotated = crypto.rotate(old)
        app.config["ENCRYPTION_KEYS"] = app.config["ENCRYPTION_KEYS"][:1]
        assert crypto.decrypt(rotated) == "secreto"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database():
    from expense_sync.extensions import redis_client

    client = redis_client("redis+sentinel://:s%40cret@10.0.0.1:26380,10.0.0.2/primary/3")
    pool = client.connection_pool
    assert pool.service_name == "primary"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "s@cret"
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("10.0.0.1", 26380), ("10.0.0.2", 26379)]
    with pytest.raises(ValueError, match="names its service"):
        redis_client("redis+sentinel://10.0.0.1:26379")
    assert redis_client("redis://127.0.0.1:6390/2").connection_pool.connection_kwargs["db"] == 2
