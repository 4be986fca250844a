"""The JSON API under ``/api/v1``: one flask-smorest blueprint per resource family.

Blueprints are grouped by audience in their modules' docstrings; each view declares its
roles (``spie.auth.access``) and scopes its queries (``spie.auth.scope``).
"""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma
from flask_smorest import Api
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser

# Every integer the API accepts (ids, capacities, hours...) is stored in or compared with an
# SQL INTEGER column: signed 32 bits on PostgreSQL.
SQL_INTEGER_MIN = -(2**31)
SQL_INTEGER_MAX = 2**31 - 1
OUT_OF_RANGE = f"Nombre hors des bornes acceptées ({SQL_INTEGER_MIN} à {SQL_INTEGER_MAX})."


def out_of_range_integers(data: Any) -> dict[Any, Any]:
    """Error messages, shaped like marshmallow's, for the integers of ``data`` (loaded
    arguments: dicts, lists, scalars) that no SQL INTEGER column can hold."""
    if isinstance(data, dict):
        items: Any = data.items()
    elif isinstance(data, list | tuple):
        items = enumerate(data)
    else:
        return {}
    errors: dict[Any, Any] = {}
    for key, value in items:
        if isinstance(value, int) and not isinstance(value, bool):
            if not SQL_INTEGER_MIN <= value <= SQL_INTEGER_MAX:
                errors[key] = [OUT_OF_RANGE]
        elif nested := out_of_range_integers(value):
            errors[key] = nested
    return errors


class StrictArgumentsParser(FlaskParser):
    """Unknown fields are errors in the query string too: webargs' default excludes them
    there silently (bodies already raise through the schemas' default ``unknown=RAISE``).

    Integers beyond an SQL INTEGER column are errors of their field (422) instead of
    reaching the database, which cannot even compare them (SQLite's driver raises
    OverflowError, PostgreSQL "out of range for type integer": both were 500s)."""

    # A plain class attribute as in webargs: annotating it ClassVar would not type-check.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012 - see comment
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }

    # webargs runs this for every location (query, body...) and turns a ValidationError into
    # its usual 422; the override keeps the loading as is and only checks what it loaded.
    def _process_location_data(
        self, location_data: Any, schema: ma.Schema, *args: Any, **kwargs: Any
    ) -> Any:
        data = super()._process_location_data(location_data, schema, *args, **kwargs)
        errors = out_of_range_integers(data)
        if errors:
            # Name the fields as the client sent them (``data_key``), as marshmallow does.
            fields = schema.fields
            raise ma.ValidationError(
                {
                    (fields[key].data_key or key) if key in fields else key: messages
                    for key, messages in errors.items()
                }
            )
        return data


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
