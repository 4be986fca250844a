"""Configuration read from the environment.

Every setting has an environment variable named ``SPIE_<NAME>`` (``SECRET_KEY`` is also read
without prefix). Outside development the app refuses to start with a default or short secret
or without a database URL: a silent fallback in production is how data ends up in the wrong
place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

DEV_SECRET = "dev-only-secret-key-not-for-production"  # noqa: S105 - refused outside development
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """The configuration cannot run the service safely."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SPIE_{name}", default)


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    database_url: str | None
    redis_url: str | None

    @property
    def is_development(self) -> bool:
        return self.env in {"development", "testing"}


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from the environment, then apply ``overrides``."""
    overrides = dict(overrides or {})
    env = overrides.pop("ENV", None) or _env("ENV", "production")
    secret = overrides.pop("SECRET_KEY", None) or os.environ.get("SECRET_KEY") or _env("SECRET_KEY")
    database_url = overrides.pop("DATABASE_URL", None) or _env("DATABASE_URL")
    redis_url = overrides.pop("REDIS_URL", None) or _env("REDIS_URL") or None
    development = env in {"development", "testing"}

    if not secret:
        if not development:
            raise ConfigError("SECRET_KEY is not set: refusing to start outside development")
        secret = DEV_SECRET
    if not development and (secret == DEV_SECRET or len(secret) < MIN_SECRET_LENGTH):
        raise ConfigError(
            f"SECRET_KEY is the development default or shorter than {MIN_SECRET_LENGTH} characters"
        )
    if not database_url:
        if not development:
            raise ConfigError("SPIE_DATABASE_URL is not set: refusing to start outside development")
        database_url = "sqlite:///instance/spie.sqlite3"

    config: dict[str, Any] = {
        "SPIE_ENV": env,
        "TESTING": env == "testing",
        "SECRET_KEY": secret,
        "SPIE_DATABASE_URL": database_url,
        "SPIE_REDIS_URL": redis_url,
        "SPIE_SQL_ECHO": _bool(_env("SQL_ECHO")),
        # Sessions: cookies are HTTP-only, SameSite=Lax, Secure outside development.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not development,
        "SESSION_COOKIE_NAME": "spie_session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": not development,
        "PERMANENT_SESSION_LIFETIME": int(_env("SESSION_LIFETIME_SECONDS", "28800") or 28800),
        # CSRF is checked explicitly (spie.auth.csrf) for cookie-authenticated unsafe requests.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        # Rate limits (flask-limiter): memory in development, Redis when configured.
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "SPIE_LOGIN_RATE_LIMIT": _env("LOGIN_RATE_LIMIT", "10 per minute"),
        "SPIE_API_TOKEN_TTL_HOURS": int(_env("API_TOKEN_TTL_HOURS", "720") or 720),
        "SPIE_MAX_PAGE_SIZE": 100,
        "MAX_CONTENT_LENGTH": int(_env("MAX_UPLOAD_BYTES", str(512 * 1024 * 1024)) or 0),
        "SPIE_JOB_DEFAULT_TIMEOUT": int(_env("JOB_TIMEOUT_SECONDS", "3600") or 3600),
        "SPIE_JOB_RETRY_INTERVALS": [10, 60, 300],
        "SPIE_HSTS": not development,
        # Mail (RIO convocations and reminders); without a host mails are only logged.
        "SPIE_SMTP_HOST": _env("SMTP_HOST"),
        "SPIE_SMTP_PORT": int(_env("SMTP_PORT", "25") or 25),
        "SPIE_SMTP_STARTTLS": _bool(_env("SMTP_STARTTLS")),
        "SPIE_SMTP_USER": _env("SMTP_USER"),
        "SPIE_SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "SPIE_SMTP_TIMEOUT": float(_env("SMTP_TIMEOUT", "30") or 30),
        "SPIE_MAIL_FROM": _env("MAIL_FROM", "ne-pas-repondre@spie.example"),
        # Orientation: absences before the EP procedure, pause length before closing a case.
        "SPIE_RIO_MAX_ABSENCES": int(_env("RIO_MAX_ABSENCES", "2") or 2),
        "SPIE_ORIENTATION_PAUSE_CLOSE_AFTER": _env("ORIENTATION_PAUSE_CLOSE_AFTER", "12m"),
        # flask-smorest / OpenAPI
        "API_TITLE": "spie",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
    }
    config.update(overrides)
    return config
