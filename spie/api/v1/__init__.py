"""Version 1 of the JSON API: the list of blueprints, in OpenAPI order."""

from spie.api.v1 import admin, agents, auth, persons, structures, territories

BLUEPRINTS = [
    auth.blp,
    persons.blp,
    structures.blp,
    territories.blp,
    agents.blp,
    admin.blp,
]
