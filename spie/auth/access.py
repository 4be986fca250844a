"""The single authorisation layer for routes.

Every view declares who may call it with :func:`roles_required` (agents with one of the
roles) or :func:`public` (no login). A ``before_request`` hook refuses to serve a view that
declares nothing, so a forgotten declaration fails closed, and a test walks the URL map.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, request
from flask_login import current_user

from spie.agents.models import Agent, Role
from spie.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

ACCESS_ATTR = "_spie_access"
ALL_AGENT_ROLES = tuple(Role)


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Allow authenticated agents holding at least one of ``roles``."""
    if not roles:
        raise ValueError("roles_required needs at least one role")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            agent = current_agent_or_none()
            if agent is None:
                raise Unauthorized("Connectez-vous pour accéder à cette ressource.")
            if not agent.has_role(*roles):
                raise Forbidden("Votre rôle ne permet pas cette action.")
            return view(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTR, {"roles": [r.value for r in roles]})
        return cast(F, wrapper)

    return decorator


def any_agent(view: F) -> F:
    return roles_required(*ALL_AGENT_ROLES)(view)


def public(view: F) -> F:
    """No authentication: login page, health check, OpenAPI document."""
    setattr(view, ACCESS_ATTR, {"public": True})
    return view


def current_agent_or_none() -> Agent | None:
    user = current_user._get_current_object() if current_user else None
    if isinstance(user, Agent) and user.is_authenticated:
        return user
    return None


def current_agent() -> Agent:
    agent = current_agent_or_none()
    if agent is None:
        raise Unauthorized("Connectez-vous pour accéder à cette ressource.")
    return agent


def access_declaration(view: Callable[..., Any]) -> dict[str, Any] | None:
    """The declaration of ``view``, looking through decorators that keep ``__wrapped__``."""
    seen: Callable[..., Any] | None = view
    while seen is not None:
        declared = getattr(seen, ACCESS_ATTR, None)
        if declared is not None:
            return cast(dict[str, Any], declared)
        seen = getattr(seen, "__wrapped__", None)
    return None


# Views provided by libraries (static files, the OpenAPI document and its page).
LIBRARY_PUBLIC_ENDPOINTS = frozenset(
    {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}
)


def install_access_guard(app: Flask) -> None:
    @app.before_request
    def _require_declaration() -> None:
        endpoint = request.endpoint
        if endpoint is None or endpoint in LIBRARY_PUBLIC_ENDPOINTS:
            return
        view = current_app.view_functions.get(endpoint)
        if view is None:
            return
        if access_declaration(view) is None:
            # Fail closed: a view nobody declared is not served.
            raise Forbidden("Cette ressource ne déclare pas qui peut l'appeler.")
