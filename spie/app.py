"""The application factory."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, g, request
from flask_login import current_user

from spie.api.common import IdConverter
from spie.config import load_settings
from spie.db import commit, db, rollback
from spie.errors import register_error_handlers
from spie.extensions import api, csrf, limiter

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# JSON endpoints that authenticate with credentials in the body: a cross-site form cannot
# send application/json, so they need no CSRF token (they are rate limited instead).
CSRF_EXEMPT_ENDPOINTS = frozenset({"auth_api.login", "auth_api.create_token_with_password"})


class SpieFlask(Flask):
    def dispatch_request(self) -> Any:
        """One commit per request, inside the dispatch so that a failing commit (a constraint
        checked at commit time, the database going away) gets its own problem+json answer."""
        response = self.make_response(super().dispatch_request())
        if response.status_code < 400:
            commit()
        else:
            rollback()
        return response


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = SpieFlask(__name__, instance_relative_config=False)
    # Before any route is added: every <int:...> of the URLs is a bounded row id.
    app.url_map.converters["int"] = IdConverter
    app.config.update(load_settings(overrides))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _configure_logging(app)

    db.init_engine(app.config["SPIE_DATABASE_URL"], echo=app.config["SPIE_SQL_ECHO"])
    _import_models()

    from spie.auth.login import init_login

    init_login(app)
    csrf.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    register_error_handlers(app)  # after Api: our problem+json handlers replace smorest's

    from spie.auth.access import install_access_guard

    install_access_guard(app)
    _install_request_lifecycle(app)
    _register_blueprints(app)
    _register_cli(app)
    return app


def _import_models() -> None:
    """Register every model on the metadata (Alembic and relationships need all of them)."""
    import spie.models  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from spie.api import register_api
    from spie.web import bp as web_bp

    register_api(api)
    app.register_blueprint(web_bp)


def _register_cli(app: Flask) -> None:
    from spie.cli import spie_cli

    app.cli.add_command(spie_cli)


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    # werkzeug's access log prints full URLs; ours never carry personal data (searches by NIR
    # or name are POST bodies), so it can stay.


def _install_request_lifecycle(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())

    @app.before_request
    def _csrf() -> None:
        if request.method not in UNSAFE_METHODS or request.endpoint in CSRF_EXEMPT_ENDPOINTS:
            return
        if request.routing_exception is not None:
            return  # nothing will be dispatched: answer 404/405, not a CSRF error
        from spie.auth.access import access_declaration
        from spie.auth.login import is_bearer_request

        if current_user.is_authenticated:
            if is_bearer_request():
                return
        else:
            view = app.view_functions.get(request.endpoint or "")
            if not (view and (access_declaration(view) or {}).get("public")):
                return  # no credentials: roles_required answers 401 before any work is done
        csrf.protect()

    @app.after_request
    def _finish(response: Response) -> Response:
        if response.status_code >= 400:
            rollback()  # error responses built by the error handlers leave nothing behind
        _security_headers(app, response)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def _teardown(exc: BaseException | None) -> None:
        if exc is not None:
            rollback()
        db.session.remove()


def _security_headers(app: Flask, response: Response) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.endswith("/docs") or request.path.endswith("/docs/"):
        # The interactive API page loads Swagger UI from its CDN.
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data:; "
            "frame-ancestors 'none'",
        )
    else:
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        )
    headers.setdefault("Cache-Control", "no-store")
    if app.config["SPIE_HSTS"]:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
