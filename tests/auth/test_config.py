"""The service refuses to start outside development without safe secrets and a database."""

from __future__ import annotations

import pytest

from spie.app import create_app
from spie.config import DEV_SECRET, MIN_SECRET_LENGTH, ConfigError, load_settings

GOOD_SECRET = "s" * MIN_SECRET_LENGTH
DATABASE = "postgresql+psycopg://spie@db.example/spie"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "SECRET_KEY",
        "SPIE_SECRET_KEY",
        "SPIE_DATABASE_URL",
        "SPIE_ENV",
        "SPIE_REDIS_URL",
        "SPIE_LOGIN_RATE_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _production(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    monkeypatch.setenv("SPIE_ENV", "production")
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_production_with_safe_settings_loads(clean_environment):
    _production(clean_environment, SPIE_SECRET_KEY=GOOD_SECRET, SPIE_DATABASE_URL=DATABASE)
    config = load_settings()
    assert config["SECRET_KEY"] == GOOD_SECRET
    assert config["SPIE_DATABASE_URL"] == DATABASE
    assert config["TESTING"] is False


def test_production_cookies_and_headers_are_secure(clean_environment):
    _production(clean_environment, SPIE_SECRET_KEY=GOOD_SECRET, SPIE_DATABASE_URL=DATABASE)
    config = load_settings()
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert config["SPIE_HSTS"] is True
    assert config["PERMANENT_SESSION_LIFETIME"] <= 12 * 3600


def test_unprefixed_secret_key_is_read(clean_environment):
    _production(clean_environment, SECRET_KEY=GOOD_SECRET, SPIE_DATABASE_URL=DATABASE)
    assert load_settings()["SECRET_KEY"] == GOOD_SECRET


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SPIE_DATABASE_URL": DATABASE}, "SECRET_KEY is not set"),
        ({"SPIE_SECRET_KEY": DEV_SECRET, "SPIE_DATABASE_URL": DATABASE}, "development default"),
        (
            {"SPIE_SECRET_KEY": "s" * (MIN_SECRET_LENGTH - 1), "SPIE_DATABASE_URL": DATABASE},
            "shorter than",
        ),
        ({"SPIE_SECRET_KEY": GOOD_SECRET}, "SPIE_DATABASE_URL is not set"),
    ],
    ids=["no-secret", "dev-secret", "short-secret", "no-database"],
)
def test_production_refuses_unsafe_settings(clean_environment, environment, message):
    _production(clean_environment, **environment)
    with pytest.raises(ConfigError, match=message):
        load_settings()
    # The app factory refuses too, before touching any database.
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_environment_defaults_to_production(clean_environment):
    """Forgetting SPIE_ENV must not turn the checks off."""
    clean_environment.setenv("SPIE_DATABASE_URL", DATABASE)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings()


@pytest.mark.parametrize("env", ["staging", "prod", "Development"])
def test_any_other_environment_name_is_treated_as_production(clean_environment, env):
    clean_environment.setenv("SPIE_ENV", env)
    clean_environment.setenv("SPIE_DATABASE_URL", DATABASE)
    clean_environment.setenv("SPIE_SECRET_KEY", DEV_SECRET)
    with pytest.raises(ConfigError):
        load_settings()


def test_development_may_use_defaults(clean_environment):
    clean_environment.setenv("SPIE_ENV", "development")
    config = load_settings()
    assert config["SECRET_KEY"] == DEV_SECRET
    assert config["SPIE_DATABASE_URL"].startswith("sqlite:///")
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["SPIE_REDIS_URL"] is None


def test_security_headers_and_hsts_when_configured(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # testing: plain HTTP
    app.config["SPIE_HSTS"] = True
    try:
        hsts = client.get("/healthz").headers["Strict-Transport-Security"]
    finally:
        app.config["SPIE_HSTS"] = False
    assert hsts.startswith("max-age=")
    assert int(hsts.split("=")[1].split(";")[0]) >= 365 * 24 * 3600
