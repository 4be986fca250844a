"""One error shape for the whole API: RFC 9457 ``application/problem+json``.

Domain code raises :class:`SpieError` subclasses; HTTP, validation, locking and database
errors are mapped here. Messages never carry personal data: the catch-all logs the exception
type and the request id only and answers a generic message.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, g, json, request
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_MIME = "application/problem+json"


class SpieError(Exception):
    """Base of the domain errors that reach the API."""

    status = 400
    code = "bad_request"
    title = "Requête invalide"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = errors
        self.extra = extra or {}


class ValidationFailed(SpieError):
    status = 422
    code = "validation_failed"
    title = "Données invalides"


class NotFound(SpieError):
    status = 404
    code = "not_found"
    title = "Introuvable"


class Forbidden(SpieError):
    status = 403
    code = "forbidden"
    title = "Accès refusé"


class Unauthorized(SpieError):
    status = 401
    code = "unauthorized"
    title = "Authentification requise"


class Conflict(SpieError):
    status = 409
    code = "conflict"
    title = "Conflit"


class PreconditionRequired(SpieError):
    status = 428
    code = "precondition_required"
    title = "En-tête If-Match requis"


class ServiceUnavailable(SpieError):
    status = 503
    code = "service_unavailable"
    title = "Service momentanément indisponible"


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    errors: dict[str, Any] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://spie.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path if request else None,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="spie"'
    return response


def _flatten_webargs(messages: Any) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {...}, "query": {...}}); keep the fields."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SpieError)
    def _domain(exc: SpieError) -> Response:
        return problem(exc.status, exc.title, exc.detail, exc.code, exc.errors, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if status == 422 and messages is not None:
            return problem(
                422,
                "Données invalides",
                "La requête contient des champs invalides ou inconnus.",
                "validation_failed",
                _flatten_webargs(messages),
            )
        detail = data.get("message") or exc.description or exc.name
        code = exc.name.lower().replace(" ", "_") if exc.name else "http_error"
        return problem(status, exc.name or "Erreur", str(detail), code)

    @app.errorhandler(StaleDataError)
    def _stale(_exc: StaleDataError) -> Response:
        return problem(
            409,
            "Conflit de version",
            "La ressource a été modifiée par quelqu'un d'autre ; rechargez-la puis recommencez.",
            "stale_version",
        )

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Response:
        # The constraint name tells which invariant was hit; the values (personal data) are
        # never echoed back.
        constraint = _constraint_name(exc)
        log.info("integrity error on constraint %s", constraint)
        return problem(
            409,
            "Conflit",
            "L'opération viole une règle d'intégrité des données.",
            "integrity_error",
            constraint=constraint,
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(SAInterfaceError)
    def _database_down(exc: Exception) -> Response:
        log.error("database unavailable: %s", type(exc).__name__)
        return problem(
            503,
            "Service momentanément indisponible",
            "La base de données ne répond pas ; réessayez dans un instant.",
            "database_unavailable",
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # pragma: no cover - routed above
            return _http(exc)
        # The frames say where it failed; the message is left out, it may carry personal data.
        log.error(
            "unhandled %s (request %s)\n%s",
            type(exc).__name__,
            getattr(g, "request_id", "-"),
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return problem(
            500,
            "Erreur interne",
            "Une erreur inattendue est survenue ; elle a été journalisée.",
            "internal_error",
            request_id=getattr(g, "request_id", None),
        )


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    text = str(getattr(exc, "orig", ""))
    # SQLite: "UNIQUE constraint failed: table.col" — the message names columns, not values.
    return text.split(":")[0] if text else None
