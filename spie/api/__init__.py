"""The JSON API under ``/api/v1``: one flask-smorest blueprint per resource family.

Blueprints are grouped by audience in their modules' docstrings; each view declares its
roles (``spie.auth.access``) and scopes its queries (``spie.auth.scope``).
"""

from __future__ import annotations

from flask_smorest import Api


def register_api(api: Api) -> None:
    from spie.api.v1 import BLUEPRINTS

    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "Jeton d'API personnel"}
    )
    api.spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "spie_session"}
    )
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
