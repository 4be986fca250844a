"""Connect the pathway to the orientation decisions.

The orientation package offers the decisions it commits to
``spie.orientation.decisions.DECISION_COMMITTED_HOOKS`` (called with the decision id once the
decision's transaction committed). The pathway registers :func:`open_after_commit` there: it
opens the pathway in its own unit of work (idempotent). Should it fail (the hook errors are
logged), the daily scan opens the missing pathways (``spie.parcours.scan``). Opening the
pathway *inside* the decision's transaction is better still: when the orientation service
calls :func:`spie.parcours.services.open_parcours_for_decision` itself, this hook finds the
pathway already open and does nothing.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def open_after_commit(decision_id: int) -> None:
    from spie.db import db, unit_of_work
    from spie.orientation.models import OrientationDecision
    from spie.parcours.services import open_parcours_for_decision

    with unit_of_work():
        decision = db.session.get(OrientationDecision, decision_id)
        if decision is not None:
            open_parcours_for_decision(decision)


def register() -> None:
    """Idempotent: registering twice adds the hook once."""
    try:
        from spie.orientation.decisions import DECISION_COMMITTED_HOOKS
    except ImportError:  # pragma: no cover - the orientation package is not there yet
        log.warning("spie.orientation.decisions has no DECISION_COMMITTED_HOOKS")
        return
    if open_after_commit not in DECISION_COMMITTED_HOOKS:
        DECISION_COMMITTED_HOOKS.append(open_after_commit)
