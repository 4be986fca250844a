"""Job declaration, enqueueing and execution (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_app_context

from spie.db import commit, db, on_commit, rollback, utcnow
from spie.jobs.models import JobRun, JobStatus

log = logging.getLogger(__name__)

QUEUES = {
    "default": 600,
    "imports": 4 * 3600,
    "partners": 1800,
    "notifications": 300,
}

_REGISTRY: dict[str, JobFunction] = {}


def queue_names() -> list[str]:
    return list(QUEUES)


@dataclass
class JobFunction:
    func: Callable[..., Any]
    queue: str
    timeout: int
    retries: int

    @property
    def name(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> str:
        """Enqueue after the current transaction commits; returns the job run id."""
        return enqueue(self, args, kwargs)


def job(
    queue: str = "default", timeout: int | None = None, retries: int = 3
) -> Callable[[Callable[..., Any]], JobFunction]:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def decorator(func: Callable[..., Any]) -> JobFunction:
        job_function = JobFunction(func, queue, timeout or QUEUES[queue], retries)
        _REGISTRY[job_function.name] = job_function
        return job_function

    return decorator


def get_redis(app: Flask | None = None) -> Any | None:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config.get("SPIE_REDIS_URL")
    if not url:
        return None
    connection = app.extensions.get("spie_redis")
    if connection is None:
        from redis import Redis

        connection = Redis.from_url(url)
        app.extensions["spie_redis"] = connection
    return connection


def enqueue(job_function: JobFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    run_id = str(uuid.uuid4())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    redis = get_redis(app)
    run = JobRun(
        id=run_id,
        name=job_function.name,
        queue=job_function.queue,
        status=JobStatus.QUEUED,
        arguments={"args": list(args), "kwargs": kwargs},
        # In process nothing retries: one attempt, so a failure reads "failed", not "retrying".
        max_attempts=1 + job_function.retries if redis is not None else 1,
    )
    db.session.add(run)

    if redis is None:
        on_commit(lambda: _run_inline(job_function.name, run_id, list(args), kwargs))
    else:

        def _push() -> None:
            from rq import Queue, Retry

            intervals = app.config["SPIE_JOB_RETRY_INTERVALS"]
            retry = (
                Retry(max=job_function.retries, interval=intervals[: job_function.retries])
                if job_function.retries
                else None
            )
            Queue(job_function.queue, connection=redis).enqueue(
                "spie.jobs.core.execute",
                job_function.name,
                run_id,
                list(args),
                kwargs,
                job_id=run_id,
                job_timeout=job_function.timeout,
                retry=retry,
                result_ttl=7 * 24 * 3600,
                failure_ttl=30 * 24 * 3600,
            )

        on_commit(_push)
    return run_id


def _run_inline(name: str, run_id: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """In-process mode: the caller's work is committed; a failing job is recorded, not raised."""
    # The failure is recorded on the JobRun by execute(); the caller's work is committed.
    with contextlib.suppress(Exception):
        execute(name, run_id, args, kwargs)


_worker_app: Flask | None = None
_engine_pid: int | None = None


def set_worker_app(app: Flask) -> None:
    global _worker_app, _engine_pid
    _worker_app = app
    _engine_pid = os.getpid()


def _resolve(name: str) -> JobFunction:
    if name not in _REGISTRY:
        module_name = name.rsplit(".", 1)[0]
        __import__(module_name)
    return _REGISTRY[name]


def execute(name: str, run_id: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run one job: called by the rq work horse, or in process after a commit."""
    if has_app_context():
        return _execute_in_context(name, run_id, args, kwargs)
    global _worker_app
    if _worker_app is None:
        from spie.app import create_app

        set_worker_app(create_app())
    if _worker_app is None:  # pragma: no cover - set just above
        raise RuntimeError("_worker_app vanished")
    if _engine_pid is not None and os.getpid() != _engine_pid and db.engine is not None:
        # rq forks a work horse per job: never reuse the parent's pooled connections.
        db.engine.dispose(close=False)
    with _worker_app.app_context():
        try:
            return _execute_in_context(name, run_id, args, kwargs)
        finally:
            db.session.remove()


def _execute_in_context(name: str, run_id: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    job_function = _resolve(name)
    g.job_name = name
    run = db.session.get(JobRun, run_id)
    if run is None:  # enqueued by an older deployment or by hand: keep a trace anyway
        run = JobRun(id=run_id, name=name, queue=job_function.queue, status=JobStatus.QUEUED)
        db.session.add(run)
    run.status = JobStatus.STARTED
    run.started_at = utcnow()
    run.attempts += 1
    commit()
    started = time.monotonic()
    try:
        result = job_function.func(*args, **kwargs)
        commit()
    except Exception as exc:
        rollback()
        run = db.session.get(JobRun, run_id)
        if run is None:  # pragma: no cover - set just above
            raise RuntimeError("run vanished") from exc
        run.status = JobStatus.RETRYING if run.attempts < run.max_attempts else JobStatus.FAILED
        run.ended_at = utcnow()
        run.error = _describe(exc)
        commit()
        log.warning("job %s %s failed (%s)", name, run_id, type(exc).__name__)
        raise
    run = db.session.get(JobRun, run_id)
    if run is None:  # pragma: no cover - set just above
        raise RuntimeError("run vanished")
    run.status = JobStatus.FINISHED
    run.ended_at = utcnow()
    run.error = None
    run.result = result if isinstance(result, dict) else None
    commit()
    log.info("job %s %s finished in %.2fs", name, run_id, time.monotonic() - started)
    return result


def _describe(exc: Exception) -> str:
    # Exception type and the last frames: domain errors carry no personal data by design.
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3)
    return "".join(frames)[-4000:]
