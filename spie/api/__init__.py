"""The JSON API under ``/api/v1``: one flask-smorest blueprint per resource family.

Blueprints are grouped by audience in their modules' docstrings; each view declares its
roles (``spie.auth.access``) and scopes its queries (``spie.auth.scope``).
"""

from __future__ import annotations

import flask_smorest
from flask_smorest import Api
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser


class StrictArgumentsParser(FlaskParser):
    """Unknown fields are errors in the query string too: webargs' default excludes them
    there silently (bodies already raise through the schemas' default ``unknown=RAISE``)."""

    # A plain class attribute as in webargs: annotating it ClassVar would not type-check.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012 - see comment
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }


# ``Blueprint.arguments`` binds the parser when it decorates a view: set it here, before the
# ``spie.api.v1`` modules (which import this package first) declare theirs.
flask_smorest.Blueprint.ARGUMENTS_PARSER = StrictArgumentsParser()


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
