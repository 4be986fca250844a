"""Reads of the import machinery (admins): runs, rejects, probable matches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from spie.db import db
from spie.errors import NotFound
from spie.integrations.models import ImportReject, ImportRun, ProbableMatch


def list_runs(filters: dict[str, Any]) -> Select[Any]:
    query = select(ImportRun).order_by(ImportRun.created_at.desc(), ImportRun.id.desc())
    for name in ("source", "status", "kind"):
        if name in filters:
            query = query.where(getattr(ImportRun, name) == filters[name])
    return query


def get_run(run_id: int) -> ImportRun:
    run = db.session.get(ImportRun, run_id)
    if run is None:
        raise NotFound(f"Import {run_id} introuvable.")
    return run


def list_rejects(run_id: int, filters: dict[str, Any]) -> Select[Any]:
    query = (
        select(ImportReject)
        .where(ImportReject.run_id == run_id)
        .order_by(ImportReject.position.is_(None).desc(), ImportReject.position, ImportReject.id)
    )
    for name in ("severity", "status", "code"):
        if name in filters:
            query = query.where(getattr(ImportReject, name) == filters[name])
    return query


def get_reject(reject_id: int) -> ImportReject:
    reject = db.session.get(ImportReject, reject_id)
    if reject is None:
        raise NotFound(f"Rejet {reject_id} introuvable.")
    return reject


def list_matches(filters: dict[str, Any]) -> Select[Any]:
    query = select(ProbableMatch).order_by(ProbableMatch.created_at.desc(), ProbableMatch.id.desc())
    if "status" in filters:
        query = query.where(ProbableMatch.status == filters["status"])
    return query


def get_match(match_id: int) -> ProbableMatch:
    match = db.session.get(ProbableMatch, match_id)
    if match is None:
        raise NotFound(f"Rapprochement {match_id} introuvable.")
    return match
