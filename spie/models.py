"""Import every model module so the metadata is complete (app factory, Alembic, tests)."""

from spie.agents.models import (
    Agent,
    AgentRole,
    Role,
)
from spie.audit.models import (
    AuditEvent,
)
from spie.auth.models import (
    ApiToken,
)
from spie.clocks.models import (
    DelayPolicy,
)
from spie.integrations.models import (
    CafHouseholdEvent,
    FtOrientationSync,
    FtRegistration,
    FtRegistrationEvent,
    ImportFile,
    ImportFileChunk,
    ImportReject,
    ImportRun,
    ProbableMatch,
)
from spie.jobs.models import (
    JobRun,
)
from spie.orientation.models import (
    CasePause,
    Convocation,
    Diagnostic,
    OrientationCase,
    OrientationDecision,
    ReferentielVersion,
    RioSession,
)
from spie.parcours.models import (
    Alert,
    Appointment,
    Assessment,
    AssessmentGrid,
    Contract,
    EpCase,
    Offer,
    Pathway,
    PathwayClock,
    PathwaySetting,
    SanctionLevel,
    Step,
    StepTransition,
)
from spie.persons.models import (
    Household,
    Person,
    SddPeriod,
)
from spie.referent.models import (
    ReferentAssignment,
)
from spie.structures.models import (
    Structure,
)
from spie.territories.models import (
    Commune,
    Territory,
)

__all__ = [
    "Agent",
    "AgentRole",
    "Alert",
    "ApiToken",
    "Appointment",
    "Assessment",
    "AssessmentGrid",
    "AuditEvent",
    "CafHouseholdEvent",
    "CasePause",
    "Commune",
    "Contract",
    "Convocation",
    "DelayPolicy",
    "Diagnostic",
    "EpCase",
    "FtOrientationSync",
    "FtRegistration",
    "FtRegistrationEvent",
    "Household",
    "ImportFile",
    "ImportFileChunk",
    "ImportReject",
    "ImportRun",
    "JobRun",
    "Offer",
    "OrientationCase",
    "OrientationDecision",
    "Pathway",
    "PathwayClock",
    "PathwaySetting",
    "Person",
    "ProbableMatch",
    "ReferentAssignment",
    "ReferentielVersion",
    "RioSession",
    "Role",
    "SanctionLevel",
    "SddPeriod",
    "Step",
    "StepTransition",
    "Structure",
    "Territory",
]
