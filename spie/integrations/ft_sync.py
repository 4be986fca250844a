"""Sending orientation decisions to France Travail, exactly once (FLOWS.md §3).

After a decision is committed, the orientation package calls the hooks of
``DECISION_COMMITTED_HOOKS`` with its id; :func:`on_decision_committed` enqueues
:func:`spie.integrations.jobs.send_orientation_to_ft` on the ``partners`` queue when France
Travail is configured (``SPIE_FT_AUTH_URL``, ``SPIE_FT_API_URL``, ``SPIE_FT_CLIENT_ID``,
``SPIE_FT_CLIENT_SECRET`` in the app config or the environment). Unconfigured, decisions stay
``pending``; ``flask spie import ft-sync`` sends every pending one later, with a report.

One attempt (:func:`sync_decision`), under an advisory lock per decision:

1. the decision's ``ft_sync_status`` must still be ``pending`` and its marker
   (:class:`FtOrientationSync`, unique per decision) not final — else nothing is done;
2. *rechercher usager* (birth date + NIR with its key): ``S002`` → ``not_found``; ``S003`` →
   ``not_found`` with the marker flagged ``several``; ``R001`` and other refusals →
   ``failed`` (permanent); 429 / 5xx / timeouts raise :class:`FtRetryableError` (the job is
   retried with backoff by rq, the CLI retries a few times itself);
3. France Travail's own orientation is read (``lectureOrientation``) and kept on the marker;
   if an earlier attempt may have sent ours (marker ``sending`` or ``maybe_applied``: a timeout
   or a 5xx on the send) and France Travail shows our parcours, the decision is ``sent``
   without sending again;
4. the marker is committed as ``sending`` *before* the call (write-ahead: a crash during the
   call is noticed by the next attempt), then the orientation is sent and the marker and the
   decision become ``sent``.

No NIR, birth date or jeton is logged or stored; markers keep codes only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from typing import Any

from flask import current_app
from sqlalchemy import select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.common.nir import nir_with_key
from spie.db import commit, db, rollback, unit_of_work, utcnow
from spie.integrations.france_travail.api import (
    FranceTravailClient,
    FranceTravailGateway,
    FtApiConfig,
    FtForbiddenError,
    FtPermanentError,
    FtRetryableError,
    SearchOutcome,
)
from spie.integrations.locks import advisory_lock
from spie.integrations.models import FtOrientationSync, FtSyncState
from spie.orientation.models import PARCOURS_FT_CODES, FtSyncStatus, OrientationDecision
from spie.persons.models import Person

log = logging.getLogger(__name__)

FINAL_MARKER_STATES = (
    FtSyncState.SENT,
    FtSyncState.NOT_FOUND,
    FtSyncState.SEVERAL,
    FtSyncState.FAILED,
)
DECISION_STATUS = {
    FtSyncState.SENT: FtSyncStatus.SENT,
    FtSyncState.NOT_FOUND: FtSyncStatus.NOT_FOUND,
    FtSyncState.SEVERAL: FtSyncStatus.NOT_FOUND,
    FtSyncState.FAILED: FtSyncStatus.FAILED,
}


class FtNotConfiguredError(Exception):
    """France Travail's API settings are missing."""


class FtSyncBusyError(Exception):
    """Another worker is sending this decision right now (retry later)."""


# ------------------------------------------------------------------------- configuration


def _setting(*names: str) -> str | None:
    config = current_app.config
    for name in names:
        value = config.get(name) or os.environ.get(name)
        if value:
            return str(value).strip()
    return None


def ft_config() -> FtApiConfig | None:
    """The client settings from the app config (or environment), None when unconfigured."""
    auth = _setting("SPIE_FT_AUTH_URL", "SPIE_FT_AUTH_BASE_URL")
    api = _setting("SPIE_FT_API_URL", "SPIE_FT_API_BASE_URL")
    client_id = _setting("SPIE_FT_CLIENT_ID")
    secret = _setting("SPIE_FT_CLIENT_SECRET")
    if not (auth and api and client_id and secret):
        return None
    method = (_setting("SPIE_FT_READ_ORIENTATION_METHOD") or "POST").upper()
    return FtApiConfig(
        auth_base_url=auth,
        api_base_url=api,
        client_id=client_id,
        client_secret=secret,
        timeout=float(_setting("SPIE_FT_TIMEOUT") or 10),
        agent_name=_setting("SPIE_FT_AGENT_NAME") or "SPIE",
        agent_first_name=_setting("SPIE_FT_AGENT_FIRST_NAME") or "BATCH",
        read_orientation_method="GET" if method == "GET" else "POST",
    )


_clients: dict[FtApiConfig, FranceTravailClient] = {}
_clients_lock = threading.Lock()


def ft_client() -> FranceTravailGateway:
    """One client per configuration and process: its token is cached and refreshed once at
    a time (the client's own lock)."""
    config = ft_config()
    if config is None:
        raise FtNotConfiguredError(
            "France Travail n'est pas configuré (SPIE_FT_AUTH_URL, SPIE_FT_API_URL, "
            "SPIE_FT_CLIENT_ID, SPIE_FT_CLIENT_SECRET) : les décisions restent en attente."
        )
    with _clients_lock:
        client = _clients.get(config)
        if client is None:
            client = FranceTravailClient(config)
            _clients[config] = client
        return client


def _origine() -> str:
    return _setting("SPIE_FT_ORIGINE") or "SPIE"


def _organisme() -> str:
    return _setting("SPIE_FT_ORGANISME") or "CD"


# ------------------------------------------------------------------------- the hook


def on_decision_committed(decision_id: int) -> None:
    """Registered in ``DECISION_COMMITTED_HOOKS``: enqueue the sending (after the commit)."""
    if ft_config() is None:
        return  # stays pending: ``spie import ft-sync`` sends it once configured
    from spie.integrations.jobs import send_orientation_to_ft

    # We run after the decision's transaction: our own unit of work commits the job row
    # and pushes the job.
    with unit_of_work():
        send_orientation_to_ft.delay(decision_id)


# ------------------------------------------------------------------------- one attempt


def _marker(decision: OrientationDecision) -> FtOrientationSync:
    marker = db.session.scalar(
        select(FtOrientationSync)
        .where(FtOrientationSync.decision_id == decision.id)
        .execution_options(populate_existing=True)
    )
    if marker is None:
        marker = FtOrientationSync(
            decision_id=decision.id,
            person_id=decision.person_id,
            state=FtSyncState.PENDING,
            parcours=PARCOURS_FT_CODES[decision.parcours],
            attempts=0,
            maybe_applied=False,
        )
        db.session.add(marker)
        db.session.flush()
    return marker


def _finish(
    decision: OrientationDecision,
    marker: FtOrientationSync,
    state: FtSyncState,
    code: str | None = None,
) -> str:
    marker.state = state
    marker.finished_at = utcnow()
    if state == FtSyncState.SENT:
        marker.sent_at = marker.sent_at or utcnow()
    if code is not None:
        marker.last_error_code = code[:40]
    decision.ft_sync_status = DECISION_STATUS[state]
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "orientation_decision",
        decision.id,
        person_id=decision.person_id,
        reason="france_travail_sync",
        details={"fields": ["ft_sync_status"], "state": state.value, "code": code},
    )
    commit()
    return state.value


def sync_decision(decision_id: int, client: FranceTravailGateway) -> str:
    """One attempt at sending decision ``decision_id`` (see the module docstring).

    Returns the outcome (``sent``, ``not_found``, ``several``, ``failed``, or the decision's
    status when it was no longer pending). Raises :class:`FtRetryableError` (try again later)
    or :class:`FtSyncBusyError`. Commits.
    """
    with advisory_lock(f"ft-sync:{decision_id}") as taken:
        if not taken:
            raise FtSyncBusyError(f"decision {decision_id} is being sent by another worker")
        decision = db.session.execute(
            select(OrientationDecision)
            .where(OrientationDecision.id == decision_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if decision is None:
            return "missing"
        if decision.ft_sync_status != FtSyncStatus.PENDING:
            return decision.ft_sync_status.value
        marker = _marker(decision)
        if marker.state in FINAL_MARKER_STATES:
            return _finish(decision, marker, marker.state)
        person = db.session.get(Person, decision.person_id)
        if person is None or person.nir is None or not person.nir_verified:
            return _finish(decision, marker, FtSyncState.NOT_FOUND, "no_verified_nir")
        parcours = PARCOURS_FT_CODES[decision.parcours]
        marker.attempts += 1
        commit()
        try:
            result = client.search_user(person.birth_date, nir_with_key(person.nir))
            if result.outcome == SearchOutcome.NOT_FOUND:
                return _finish(decision, marker, FtSyncState.NOT_FOUND, result.code_retour)
            if result.outcome == SearchOutcome.SEVERAL:
                return _finish(decision, marker, FtSyncState.SEVERAL, result.code_retour)
            jeton = result.jeton or ""
            current = client.read_orientation(jeton)
            marker.ft_read_at = utcnow()
            if current is not None:
                marker.ft_parcours = (current.parcours or "")[:10] or None
                marker.ft_statut = (current.statut or "")[:30] or None
                marker.ft_entered_on = current.date_entree_parcours
            in_doubt = marker.maybe_applied or marker.state == FtSyncState.SENDING
            if in_doubt and current is not None and current.parcours == parcours:
                # An earlier attempt's send went through: do not send it twice.
                return _finish(decision, marker, FtSyncState.SENT, "already_applied")
            marker.state = FtSyncState.SENDING
            marker.parcours = parcours
            commit()  # write-ahead: the next attempt reads before sending again
            ack = client.send_orientation(jeton, parcours, _organisme(), _origine())  # type: ignore[arg-type]
            marker.code_retour = ack.code_retour
            return _finish(decision, marker, FtSyncState.SENT)
        except FtForbiddenError as exc:
            return _finish(decision, marker, FtSyncState.FAILED, exc.code)
        except FtRetryableError as exc:
            marker.last_error_code = exc.code[:40]
            if exc.maybe_applied:
                marker.maybe_applied = True
            elif marker.state == FtSyncState.SENDING and exc.endpoint == "orientation":
                marker.state = FtSyncState.PENDING  # refused before processing (429...)
            commit()
            raise
        except FtPermanentError as exc:
            return _finish(decision, marker, FtSyncState.FAILED, exc.code)


def sync_decision_job(decision_id: int) -> dict[str, Any]:
    """Body of the rq job: unconfigured → nothing (stays pending); retryable → raise."""
    if ft_config() is None:
        return {"decision_id": decision_id, "outcome": "pending", "reason": "not_configured"}
    outcome = sync_decision(decision_id, ft_client())
    return {"decision_id": decision_id, "outcome": outcome}


# ------------------------------------------------------------------------- batch


def _retry_base() -> float:
    return float(_setting("SPIE_FT_RETRY_BASE_SECONDS") or 1.0)


def sync_pending(
    *, limit: int | None = None, attempts: int = 4, client: FranceTravailGateway | None = None
) -> dict[str, Any]:
    """Send every pending decision (oldest first), retrying 429/5xx with exponential backoff
    (honouring Retry-After, capped at 30 s). Returns the run report."""
    client = client or ft_client()
    query = (
        select(OrientationDecision.id)
        .where(OrientationDecision.ft_sync_status == FtSyncStatus.PENDING)
        .order_by(OrientationDecision.id)
    )
    if limit is not None:
        query = query.limit(limit)
    decision_ids = list(db.session.scalars(query))
    counts: Counter[str] = Counter()
    outcomes: list[dict[str, Any]] = []
    base = _retry_base()
    started = time.monotonic()
    for decision_id in decision_ids:
        outcome = "retry_later"
        code: str | None = None
        for attempt in range(attempts):
            try:
                outcome = sync_decision(decision_id, client)
                break
            except (FtRetryableError, FtSyncBusyError) as exc:
                rollback()
                code = getattr(exc, "code", "busy")
                if attempt + 1 == attempts or getattr(exc, "maybe_applied", False):
                    # A send that may have gone through is checked on a later run, once
                    # France Travail has had time to process it (never re-sent blindly).
                    break
                retry_after = getattr(exc, "retry_after", None)
                delay = min(30.0, retry_after if retry_after is not None else base * 2**attempt)
                time.sleep(delay)
        counts[outcome] += 1
        outcomes.append({"decision_id": decision_id, "outcome": outcome, "code": code})
    return {
        "counts": {
            "pending": len(decision_ids),
            "sent": counts["sent"],
            "not_found": counts["not_found"] + counts["several"],
            "several": counts["several"],
            "failed": counts["failed"],
            "retry_later": counts["retry_later"],
        },
        "decisions": outcomes,
        "seconds": round(time.monotonic() - started, 3),
    }
