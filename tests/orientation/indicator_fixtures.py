"""A small, hand-built population for the orientation indicators (docs/indicators.md).

Observation date of the hand computations: ``AS_OF`` = 2025-06-30; cohort March-May 2025.
Two CTMs: Villeurbanne (cases ``A*``) and Rhône Amont (``B*``); one Lyon case (``L1``) for
the scope tests; one duplicate (``D1``) that no indicator counts.

=====  ======  ==========  ==========  ======  ==============  ==========================
case   public  started     notified    paused  closed          t on 2025-06-30 (days)
=====  ======  ==========  ==========  ======  ==============  ==========================
A1     BRSA    2025-03-03  2025-03-31  0                       28 oriented
A2     BRSA    2025-03-10  2025-04-28  7                       49 - 7 = 42 oriented
A3     BRSA    2025-03-17  2025-05-26  0                       70 oriented
A4     BRSA    2025-03-24  —           0                       98 waiting (censored)
A5     BRSA    2025-03-05  —           0       03-25 left_sdd  20 closed (censored)
A6     BRSA    2025-04-01  2025-04-01  0                       0 oriented (direct)
A7     BRSA    2025-04-14  2025-06-13  0                       60 oriented
A8     BRSA    2025-04-30  —           5 + open pause since 06-10: 41 - 5 = 36 waiting
A9     BRSA    2025-06-16  —           0                       14 waiting (June cohort)
B1     BRSA    2025-03-03  2025-04-21  0                       49 oriented
B2     BRSA    2025-03-12  —           0       05-20 moved     69 closed (censored)
B3     BRSA    2025-03-20  2025-04-10  0                       21 oriented, reoriented 05-15
B4     BRSA    2025-04-07  —           0                       84 waiting
B5     RSJ     2025-04-15  —           0       05-20 abandon.  35 closed (censored)
B6     BRSA    2025-05-25  —           0                       36 waiting
B7     BRSA    2025-05-12  2025-05-30  0                       18 oriented
B8     RSJ     2025-06-02  —           0                       28 waiting, not SDD
L1     BRSA    2025-03-10  2025-04-01  0                       22 oriented (Lyon)
D1     BRSA    2025-03-15  —           0       03-16 duplic.   (never counted)
=====  ======  ==========  ==========  ======  ==============  ==========================

First decisions (structure, parcours, via RIO / direct, decided on): A1 S1 emploi RIO 03-28;
A2 S1 social RIO 04-25; A3 S2 socio-pro 05-22; A6 S2 emploi direct 04-01; A7 S3 emploi
06-11; B1 S1 emploi RIO 04-18; B3 S2 social RIO 04-08 (then rank 2: S1 emploi 05-15);
B7 S1 emploi RIO 05-28; L1 S1 emploi RIO 03-28.

RIO sessions: R1 2025-03-20 Villeurbanne (A1 present, A2 present, A3 absent, A4 excused);
R2 2025-04-10 Villeurbanne (A3 present, A4 absent, A8 not recorded, A5 convocation
cancelled); R3 2025-04-15 Rhône Amont (B1 present, B3 present, B4 absent); R4 2025-05-05
Villeurbanne cancelled (A4); R5 2025-07-10 Villeurbanne (A9, after AS_OF); R6 2025-03-25
Lyon (L1 present).

Deadlines: legal = start + 42 days + paused days, target = start + 2 months + paused days;
both NULL for A8 (paused now).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from spie.agents.models import Agent, Role
from spie.clocks.models import ClockKind, DelayPolicy
from spie.db import db
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    ClockStartBasis,
    CloseReason,
    Convocation,
    OrientationCase,
    OrientationDecision,
    Parcours,
    RioSession,
    RioStatus,
)
from spie.persons.models import Public
from spie.structures.models import Structure
from tests.factories import AgentFactory, PersonFactory, StructureFactory, territory

PARIS = ZoneInfo("Europe/Paris")
AS_OF = dt.date(2025, 6, 30)
EARLY_AS_OF = dt.date(2025, 4, 30)
VILLEURBANNE = "CTM-VILLEURBANNE"
RHONE_AMONT = "CTM-RHONE-AMONT"
LYON = "LYON"

D = dt.date


@dataclass(frozen=True)
class CaseSpec:
    territory: str
    started: dt.date
    notified: dt.date | None = None
    paused_days: int = 0
    paused_since: dt.date | None = None
    closed: tuple[dt.date, CloseReason] | None = None
    public: Public = Public.BRSA
    bound_by_duties: bool = True
    # first decision: (structure key, parcours, via_rio, direct, decided_on)
    decision: tuple[str, Parcours, bool, bool, dt.date] | None = None


CASES: dict[str, CaseSpec] = {
    "A1": CaseSpec(
        VILLEURBANNE,
        D(2025, 3, 3),
        D(2025, 3, 31),
        decision=("S1", Parcours.EMPLOI, True, False, D(2025, 3, 28)),
    ),
    "A2": CaseSpec(
        VILLEURBANNE,
        D(2025, 3, 10),
        D(2025, 4, 28),
        paused_days=7,
        decision=("S1", Parcours.SOCIAL, True, False, D(2025, 4, 25)),
    ),
    "A3": CaseSpec(
        VILLEURBANNE,
        D(2025, 3, 17),
        D(2025, 5, 26),
        decision=("S2", Parcours.SOCIO_PROFESSIONNEL, False, False, D(2025, 5, 22)),
    ),
    "A4": CaseSpec(VILLEURBANNE, D(2025, 3, 24)),
    "A5": CaseSpec(VILLEURBANNE, D(2025, 3, 5), closed=(D(2025, 3, 25), CloseReason.LEFT_SDD)),
    "A6": CaseSpec(
        VILLEURBANNE,
        D(2025, 4, 1),
        D(2025, 4, 1),
        decision=("S2", Parcours.EMPLOI, False, True, D(2025, 4, 1)),
    ),
    "A7": CaseSpec(
        VILLEURBANNE,
        D(2025, 4, 14),
        D(2025, 6, 13),
        decision=("S3", Parcours.EMPLOI, False, False, D(2025, 6, 11)),
    ),
    "A8": CaseSpec(VILLEURBANNE, D(2025, 4, 30), paused_days=5, paused_since=D(2025, 6, 10)),
    "A9": CaseSpec(VILLEURBANNE, D(2025, 6, 16)),
    "B1": CaseSpec(
        RHONE_AMONT,
        D(2025, 3, 3),
        D(2025, 4, 21),
        decision=("S1", Parcours.EMPLOI, True, False, D(2025, 4, 18)),
    ),
    "B2": CaseSpec(RHONE_AMONT, D(2025, 3, 12), closed=(D(2025, 5, 20), CloseReason.MOVED_AWAY)),
    "B3": CaseSpec(
        RHONE_AMONT,
        D(2025, 3, 20),
        D(2025, 4, 10),
        decision=("S2", Parcours.SOCIAL, True, False, D(2025, 4, 8)),
    ),
    "B4": CaseSpec(RHONE_AMONT, D(2025, 4, 7)),
    "B5": CaseSpec(
        RHONE_AMONT,
        D(2025, 4, 15),
        closed=(D(2025, 5, 20), CloseReason.ABANDONED),
        public=Public.RSJ,
        bound_by_duties=False,
    ),
    "B6": CaseSpec(RHONE_AMONT, D(2025, 5, 25)),
    "B7": CaseSpec(
        RHONE_AMONT,
        D(2025, 5, 12),
        D(2025, 5, 30),
        decision=("S1", Parcours.EMPLOI, True, False, D(2025, 5, 28)),
    ),
    "B8": CaseSpec(RHONE_AMONT, D(2025, 6, 2), public=Public.RSJ, bound_by_duties=False),
    "L1": CaseSpec(
        LYON,
        D(2025, 3, 10),
        D(2025, 4, 1),
        decision=("S1", Parcours.EMPLOI, True, False, D(2025, 3, 28)),
    ),
    "D1": CaseSpec(VILLEURBANNE, D(2025, 3, 15), closed=(D(2025, 3, 16), CloseReason.DUPLICATE)),
}


@dataclass
class IndicatorWorld:
    policy: DelayPolicy
    structures: dict[str, Structure]
    cases: dict[str, OrientationCase]
    sessions: dict[str, RioSession]
    manager: Agent  # Villeurbanne + Rhône Amont
    admin: Agent
    extra: dict[str, Any] = field(default_factory=dict)

    def territory_id(self, code: str) -> int:
        return territory(code).id


def orientation_policy() -> DelayPolicy:
    policy = DelayPolicy(
        clock=ClockKind.ORIENTATION,
        legal_limit="6w",
        target="2m",
        valid_from=D(2025, 1, 1),
        label="Orientation (tests des indicateurs)",
    )
    db.session.add(policy)
    db.session.flush()
    return policy


def add_case(
    spec: CaseSpec,
    policy: DelayPolicy,
    structures: dict[str, Structure],
    *,
    rank: int = 1,
) -> OrientationCase:
    person = PersonFactory(
        territory_code=spec.territory, public=spec.public, bound_by_duties=spec.bound_by_duties
    )
    closed_on, close_reason = spec.closed if spec.closed else (None, None)
    if spec.notified and close_reason is None:
        status, closed_on, close_reason = CaseStatus.NOTIFIEE, spec.notified, CloseReason.ORIENTED
    elif close_reason is not None:
        status = CaseStatus.CLOSED
    else:
        status = CaseStatus.A_ORIENTER
    paused_now = spec.paused_since is not None
    case = OrientationCase(
        person_id=person.id,
        status=status,
        clock_started_on=spec.started,
        start_basis=ClockStartBasis.DDSOUDRODEV,
        policy_id=policy.id,
        legal_deadline=None
        if paused_now
        else spec.started + dt.timedelta(days=42 + spec.paused_days),
        target_date=None
        if paused_now
        else spec.started + relativedelta(months=2) + dt.timedelta(days=spec.paused_days),
        paused_since=spec.paused_since,
        paused_days=spec.paused_days,
        territory_id=territory(spec.territory).id,
        public=spec.public,
        decided_on=spec.decision[4] if spec.decision else None,
        notified_on=spec.notified,
        closed_on=closed_on,
        close_reason=close_reason,
    )
    db.session.add(case)
    db.session.flush()
    if spec.decision:
        structure_key, parcours, via_rio, direct, decided_on = spec.decision
        add_decision(
            case,
            structures[structure_key],
            parcours,
            decided_on,
            rank=rank,
            via_rio=via_rio,
            direct=direct,
            notified_on=spec.notified,
        )
    return case


def add_decision(
    case: OrientationCase,
    structure: Structure,
    parcours: Parcours,
    decided_on: dt.date,
    *,
    rank: int = 1,
    via_rio: bool = False,
    direct: bool = False,
    notified_on: dt.date | None = None,
) -> OrientationDecision:
    decision = OrientationDecision(
        case_id=case.id,
        person_id=case.person_id,
        rank=rank,
        decided_on=decided_on,
        parcours=parcours,
        structure_id=structure.id,
        follows_proposal=True,
        via_rio=via_rio,
        direct=direct,
        notified_on=notified_on,
        reorientation_reason=None if rank == 1 else "Réorientation (test)",
    )
    db.session.add(decision)
    db.session.flush()
    return decision


def paris(year: int, month: int, day: int, hour: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=PARIS)


def add_session(
    code: str, starts: dt.datetime, animator: Structure, status: RioStatus = RioStatus.HELD
) -> RioSession:
    session = RioSession(
        starts_at=starts,
        place="Salle de test",
        territory_id=territory(code).id,
        animator_structure_id=animator.id,
        capacity=20,
        status=status,
    )
    db.session.add(session)
    db.session.flush()
    return session


def convene(
    session: RioSession,
    case: OrientationCase,
    attendance: Attendance | None,
    *,
    cancelled: bool = False,
) -> Convocation:
    convocation = Convocation(
        session_id=session.id,
        case_id=case.id,
        person_id=case.person_id,
        attendance=attendance,
        cancelled_at=session.starts_at - dt.timedelta(days=2) if cancelled else None,
    )
    db.session.add(convocation)
    db.session.flush()
    return convocation


def build_world() -> IndicatorWorld:
    policy = orientation_policy()
    structures = {key: StructureFactory(name=f"Indicateurs {key}") for key in ("S1", "S2", "S3")}
    cases = {name: add_case(spec, policy, structures) for name, spec in CASES.items()}
    # B3 is reoriented on 2025-05-15 (rank 2): a reorientation, not a new orientation.
    add_decision(
        cases["B3"],
        structures["S1"],
        Parcours.EMPLOI,
        D(2025, 5, 15),
        rank=2,
        notified_on=D(2025, 5, 16),
    )

    present, absent, excused = Attendance.PRESENT, Attendance.ABSENT, Attendance.EXCUSE
    sessions = {
        "R1": add_session(VILLEURBANNE, paris(2025, 3, 20, 10), structures["S1"]),
        "R2": add_session(VILLEURBANNE, paris(2025, 4, 10, 14), structures["S1"]),
        "R3": add_session(RHONE_AMONT, paris(2025, 4, 15, 9), structures["S2"]),
        "R4": add_session(
            VILLEURBANNE, paris(2025, 5, 5, 9), structures["S1"], RioStatus.CANCELLED
        ),
        "R5": add_session(VILLEURBANNE, paris(2025, 7, 10, 9), structures["S1"], RioStatus.PLANNED),
        "R6": add_session(LYON, paris(2025, 3, 25, 9), structures["S1"]),
    }
    for session, name, attendance in (
        ("R1", "A1", present),
        ("R1", "A2", present),
        ("R1", "A3", absent),
        ("R1", "A4", excused),
        ("R2", "A3", present),
        ("R2", "A4", absent),
        ("R2", "A8", None),
        ("R3", "B1", present),
        ("R3", "B3", present),
        ("R3", "B4", absent),
        ("R4", "A4", None),
        ("R5", "A9", None),
        ("R6", "L1", present),
    ):
        convene(sessions[session], cases[name], attendance)
    convene(sessions["R2"], cases["A5"], None, cancelled=True)

    manager = AgentFactory(roles=[Role.MANAGER], territory_codes=[VILLEURBANNE, RHONE_AMONT])
    admin = AgentFactory(roles=[Role.ADMIN])
    return IndicatorWorld(policy, structures, cases, sessions, manager, admin)
