"""The daily deadline scan: brings the pathway clocks up to date and raises the alerts that
are due. Idempotent (clock keys, one alert per person/kind/due date) and safe to run on two
workers at once (a transaction-level advisory lock on PostgreSQL; the unique keys anyway).

0. latest decisions without a pathway get one (the decision hook failed or is not wired);
1. pathways whose decision has been notified since get their entry and contract clocks;
2. assignments of référents no longer active (left, deactivated) end: their people start the
   référent gap clock;
3. people with an active pathway and no référent get a gap clock if they have none;
4. alerts: entry or contract overdue, social review due, contract renewal window open,
   référent gap past its limit (to the structure's managers).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Integer, and_, cast, exists, func, insert, literal, null, or_, select, text
from sqlalchemy.orm import aliased

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.clocks.calendar import paris_date
from spie.clocks.models import ClockKind
from spie.db import UTCDateTime, db
from spie.orientation.models import OrientationDecision
from spie.parcours import clock
from spie.parcours.clocks import start_clock
from spie.parcours.models import Alert, AlertKind, Pathway, PathwayClock
from spie.parcours.services import open_parcours_for_decision, record_notification
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment
from spie.referent.services import end_assignments_of_departed

log = logging.getLogger(__name__)

LOCK_KEY = 7_301_001  # pg_advisory_xact_lock key of the scan

# (clock kind, alert kind, condition on the clock for "due today")
ALERT_RULES: tuple[tuple[ClockKind, AlertKind, str], ...] = (
    (ClockKind.PATHWAY_ENTRY, AlertKind.PATHWAY_ENTRY_OVERDUE, "overdue"),
    (ClockKind.CONTRACT, AlertKind.CONTRACT_OVERDUE, "overdue"),
    (ClockKind.SOCIAL_REVIEW, AlertKind.SOCIAL_REVIEW, "due"),
    (ClockKind.CONTRACT_RENEWAL, AlertKind.CONTRACT_RENEWAL, "started"),
    (ClockKind.REFERENT_GAP, AlertKind.REFERENT_GAP, "overdue"),
)


def _lock() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _sync_notifications() -> int:
    rows = db.session.scalars(
        select(OrientationDecision)
        .join(Pathway, Pathway.decision_id == OrientationDecision.id)
        .where(
            Pathway.closed_on.is_(None),
            OrientationDecision.notified_on.is_not(None),
            or_(
                Pathway.notified_on.is_(None),
                ~exists(
                    select(PathwayClock.id).where(
                        PathwayClock.pathway_id == Pathway.id,
                        PathwayClock.kind == ClockKind.PATHWAY_ENTRY,
                    )
                ),
            ),
        )
    ).all()
    for decision in rows:
        record_notification(decision)
    return len(rows)


def _open_missing_pathways() -> int:
    """Latest decisions of people that have no pathway for them yet (the decision hook
    failed or was not wired): open it now."""
    later = aliased(OrientationDecision, name="later_decision")
    rows = db.session.scalars(
        select(OrientationDecision).where(
            ~exists(select(Pathway.id).where(Pathway.decision_id == OrientationDecision.id)),
            ~exists(
                select(later.id).where(
                    later.person_id == OrientationDecision.person_id,
                    later.rank > OrientationDecision.rank,
                )
            ),
        )
    ).all()
    for decision in rows:
        open_parcours_for_decision(decision)
    return len(rows)


def _gap_clocks() -> int:
    """People with an active pathway, no active référent and no open gap clock."""
    no_referent = ~exists(
        select(ReferentAssignment.id).where(
            ReferentAssignment.person_id == Pathway.person_id,
            ReferentAssignment.ended_at.is_(None),
        )
    )
    no_gap = ~exists(
        select(PathwayClock.id).where(
            PathwayClock.person_id == Pathway.person_id,
            PathwayClock.kind == ClockKind.REFERENT_GAP,
            PathwayClock.met_on.is_(None),
            PathwayClock.stopped_on.is_(None),
        )
    )
    last_end = (
        select(func.max(ReferentAssignment.ended_at))
        .where(ReferentAssignment.person_id == Pathway.person_id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Pathway.id, Pathway.person_id, Pathway.opened_on, last_end.label("last_end"))
        .join(Person, Person.id == Pathway.person_id)
        .where(
            Pathway.closed_on.is_(None),
            Person.current_structure_id.is_not(None),
            no_referent,
            no_gap,
        )
    ).all()
    for row in rows:
        since = row.opened_on
        if row.last_end is not None:
            since = max(since, paris_date(_aware(row.last_end)))
        start_clock(ClockKind.REFERENT_GAP, row.person_id, since, pathway_id=row.id)
    return len(rows)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _raise_alerts(today: dt.date) -> dict[str, int]:
    """One INSERT ... SELECT per rule: open clocks whose condition holds today and no alert
    of that kind for the person and due date yet."""
    counts: dict[str, int] = {}
    now = clock.now()
    for clock_kind, alert_kind, condition in ALERT_RULES:
        c = PathwayClock
        when = {
            "overdue": c.due_on < today,
            "due": c.due_on <= today,
            "started": c.started_on <= today,
        }[condition]
        active_agent = (
            select(ReferentAssignment.agent_id)
            .where(
                ReferentAssignment.person_id == c.person_id,
                ReferentAssignment.ended_at.is_(None),
            )
            .limit(1)
            .scalar_subquery()
        )
        active_structure = (
            select(ReferentAssignment.structure_id)
            .where(
                ReferentAssignment.person_id == c.person_id,
                ReferentAssignment.ended_at.is_(None),
            )
            .limit(1)
            .scalar_subquery()
        )
        # The gap alert goes to the structure's managers (no référent by definition).
        agent = cast(null(), Integer) if clock_kind == ClockKind.REFERENT_GAP else active_agent
        source = (
            select(
                c.person_id,
                literal(alert_kind.value),
                c.due_on,
                literal(now, UTCDateTime()),
                agent,
                func.coalesce(active_structure, Person.current_structure_id),
                literal("clock"),
                c.id,
                literal(now, UTCDateTime()),
                literal(now, UTCDateTime()),
                literal(1),
            )
            .join(Person, Person.id == c.person_id)
            .where(
                c.kind == clock_kind,
                c.met_on.is_(None),
                c.stopped_on.is_(None),
                when,
                ~exists(
                    select(Alert.id).where(
                        and_(
                            Alert.person_id == c.person_id,
                            Alert.kind == alert_kind,
                            Alert.due_on == c.due_on,
                        )
                    )
                ),
            )
        )
        result = db.session.execute(
            insert(Alert)
            .from_select(
                [
                    "person_id",
                    "kind",
                    "due_on",
                    "raised_at",
                    "agent_id",
                    "structure_id",
                    "source_type",
                    "source_id",
                    "created_at",
                    "updated_at",
                    "version",
                ],
                source,
            )
            .returning(Alert.id)
        )
        # RETURNING rather than rowcount, which psycopg does not report for INSERT … SELECT.
        counts[alert_kind.value] = len(result.all())
    return counts


def scan_deadlines(today: dt.date) -> dict[str, Any]:
    """Run the whole scan as of ``today`` (flushes; the job or CLI commits)."""
    _lock()
    opened = _open_missing_pathways()
    notified = _sync_notifications()
    ended = end_assignments_of_departed(today)
    gaps = _gap_clocks()
    db.session.flush()
    alerts = _raise_alerts(today)
    db.session.expire_all()
    summary = {
        "as_of": today.isoformat(),
        "pathways_opened": opened,
        "notifications_synced": notified,
        "assignments_ended": ended,
        "gap_clocks_started": gaps,
        "alerts_raised": alerts,
    }
    record(AuditAction.CREATE, "alert_scan", None, reason="scan", details=summary)
    log.info("pathway deadline scan %s", summary)
    return summary
