"""Every view declares who may call it; the public ones are an explicit, reviewed list."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from flask import Flask

from spie.auth.access import (
    LIBRARY_PUBLIC_ENDPOINTS,
    access_declaration,
    install_access_guard,
    public,
)
from spie.errors import PROBLEM_MIME, register_error_handlers

# Adding a public view is a security decision: it must be added here, on purpose.
EXPECTED_PUBLIC = {
    "web.login",
    "web.home",
    "web.health",
    "auth_api.csrf_token",
    "auth_api.login",
    "auth_api.create_token_with_password",
}


def _declarations(app: Flask) -> dict[str, dict[str, Any] | None]:
    return {
        rule.endpoint: access_declaration(app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in LIBRARY_PUBLIC_ENDPOINTS
    }


def test_every_view_declares_its_access(app):
    declarations = _declarations(app)
    assert len(declarations) > 20  # the walk did find the application's views
    undeclared = sorted(endpoint for endpoint, found in declarations.items() if found is None)
    assert undeclared == []


def test_public_views_are_exactly_the_expected_ones(app):
    declared_public = {
        endpoint
        for endpoint, found in _declarations(app).items()
        if found is not None and found.get("public")
    }
    assert declared_public == EXPECTED_PUBLIC


def test_non_public_declarations_name_known_roles(app):
    from spie.agents.models import Role

    for endpoint, found in _declarations(app).items():
        if endpoint in EXPECTED_PUBLIC:
            continue
        assert found is not None
        assert found.get("roles"), endpoint
        assert set(found["roles"]) <= {r.value for r in Role}, endpoint


def test_library_endpoints_exist(app):
    # A stale name in LIBRARY_PUBLIC_ENDPOINTS would silently exempt nothing (or a new view).
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints >= LIBRARY_PUBLIC_ENDPOINTS


# --- the guard itself, on a tiny app of its own -------------------------------------------


def _keep_wrapped(view: Any) -> Any:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    return wrapper


def _drop_wrapped(view: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    wrapper.__name__ = view.__name__
    return wrapper


@pytest.fixture
def guarded() -> Flask:
    tiny = Flask("guard_test")
    register_error_handlers(tiny)
    install_access_guard(tiny)

    @tiny.route("/declared")
    @public
    def declared() -> str:
        return "ok"

    @tiny.route("/undeclared")
    def undeclared() -> str:
        return "served"

    @tiny.route("/declared-then-wrapped")
    @_keep_wrapped
    @public
    def declared_then_wrapped() -> str:
        return "ok"

    @tiny.route("/declaration-lost")
    @_drop_wrapped
    @public
    def declaration_lost() -> str:
        return "served"

    return tiny


def test_guard_serves_a_declared_view(guarded):
    response = guarded.test_client().get("/declared")
    assert response.status_code == 200
    assert response.text == "ok"


def test_guard_refuses_an_undeclared_view(guarded):
    response = guarded.test_client().get("/undeclared")
    assert response.status_code == 403
    assert response.mimetype == PROBLEM_MIME
    assert response.json["code"] == "forbidden"
    assert "served" not in response.text


def test_guard_looks_through_decorators_that_keep_wrapped(guarded):
    assert guarded.test_client().get("/declared-then-wrapped").status_code == 200


def test_guard_fails_closed_when_a_decorator_hides_the_declaration(guarded):
    assert guarded.test_client().get("/declaration-lost").status_code == 403


def test_guard_lets_unknown_urls_answer_404(guarded):
    response = guarded.test_client().get("/nowhere")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_MIME
