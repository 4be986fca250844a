"""Background jobs of the integrations (rq queues ``imports`` and ``partners``).

Every job is idempotent and safe on any worker, twice:

- :func:`import_run` runs or resumes one :class:`ImportRun` (per-file advisory lock, batch
  checkpoints, final runs left alone);
- :func:`scan_inbox` stores the new files of the inbox folder in the database and enqueues
  their imports (checksums make a file found twice a no-op; an advisory lock keeps two
  schedulers from scanning at once);
- :func:`resume_stale_runs` re-enqueues runs whose worker died (heartbeat stopped, lock free);
- :func:`replay_run_rejects` replays the open rejects of a run;
- :func:`send_orientation_to_ft` sends one orientation decision to France Travail, exactly once
  (see :mod:`spie.integrations.ft_sync`);
- :func:`review_ft_radiations` flags SDD people radiated by France Travail for too long.
"""

from __future__ import annotations

from typing import Any

from spie.jobs.core import job


@job(queue="imports", retries=3)
def import_run(run_id: int) -> dict[str, Any]:
    from spie.db import db
    from spie.integrations.models import ImportRun
    from spie.integrations.runs import execute_run, run_summary

    execute_run(run_id)
    run = db.session.get(ImportRun, run_id)
    return run_summary(run) if run is not None else {}


@job(queue="imports", retries=1)
def scan_inbox() -> dict[str, Any]:
    from spie.integrations.inbox import scan_configured_inbox

    return scan_configured_inbox(enqueue=True)


@job(queue="imports", retries=0)
def resume_stale_runs() -> dict[str, Any]:
    from spie.integrations.services import requeue_stale_runs

    return {"requeued": requeue_stale_runs()}


@job(queue="imports", retries=1)
def replay_run_rejects(
    run_id: int, agent_id: int | None = None, reject_ids: list[int] | None = None
) -> dict[str, Any]:
    from spie.integrations.services import replay_open_rejects

    return replay_open_rejects(run_id, agent_id, reject_ids)


@job(queue="partners", retries=5)
def send_orientation_to_ft(decision_id: int) -> dict[str, Any]:
    from spie.integrations.ft_sync import sync_decision_job

    return sync_decision_job(decision_id)


@job(queue="default", retries=1)
def review_ft_radiations() -> dict[str, Any]:
    from spie.integrations.france_travail.importer import review_long_radiations

    return {"flagged": review_long_radiations()}
