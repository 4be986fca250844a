"""Import every model module so the metadata is complete (app factory, Alembic, tests)."""

from spie.agents.models import Agent, AgentRole, Role
from spie.audit.models import AuditEvent
from spie.auth.models import ApiToken
from spie.jobs.models import JobRun
from spie.persons.models import Household, Person, SddPeriod
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure
from spie.territories.models import Commune, Territory

__all__ = [
    "Agent",
    "AgentRole",
    "ApiToken",
    "AuditEvent",
    "Commune",
    "Household",
    "JobRun",
    "Person",
    "ReferentAssignment",
    "Role",
    "SddPeriod",
    "Structure",
    "Territory",
]

from spie.clocks.models import DelayPolicy  # noqa: E402
from spie.orientation.models import (  # noqa: E402
    CasePause,
    Convocation,
    Diagnostic,
    OrientationCase,
    OrientationDecision,
    ReferentielVersion,
    RioSession,
)

__all__ += [
    "CasePause",
    "Convocation",
    "DelayPolicy",
    "Diagnostic",
    "OrientationCase",
    "OrientationDecision",
    "ReferentielVersion",
    "RioSession",
]
