"""Background jobs: enqueued after commit only, run in process without Redis, on rq with it
(named queues, timeouts, retries with backoff), every run visible to admins."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from spie.agents.models import Role
from spie.audit.models import ActorKind, AuditEvent
from spie.db import commit, db, rollback
from spie.jobs import job, queue_names
from spie.jobs.core import QUEUES
from spie.jobs.models import JobRun, JobStatus
from tests.conftest import TEST_REDIS_URL
from tests.factories import AgentFactory
from tests.helpers import api_as
from tests.jobs import sample_jobs
from tests.jobs.sample_jobs import TRACE, always_fails, fails_then_succeeds, leave_trace


def traces(marker: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == TRACE, AuditEvent.resource_id == marker
            )
        )
    )


def run_of(run_id: str) -> JobRun | None:
    db.session.expire_all()
    return db.session.get(JobRun, run_id)


@pytest.fixture(autouse=True)
def _fresh_attempts() -> Iterator[None]:
    sample_jobs.attempts.clear()
    yield
    sample_jobs.attempts.clear()


# --- declaration --------------------------------------------------------------------------


def test_named_queues_with_their_timeouts():
    assert queue_names() == ["default", "imports", "partners", "notifications"]
    assert leave_trace.queue == "default"
    assert leave_trace.timeout == QUEUES["default"]
    assert always_fails.timeout == 42
    assert always_fails.name == "tests.jobs.sample_jobs.always_fails"


def test_unknown_queue_is_refused_at_declaration():
    with pytest.raises(ValueError, match="unknown queue"):
        job(queue="nowhere")


def test_a_job_can_be_called_directly(app):
    assert leave_trace("direct") == {"marker": "direct"}
    assert len(traces("direct")) == 1


# --- in process (no SPIE_REDIS_URL) -------------------------------------------------------


@pytest.fixture
def in_process(app: Flask) -> Flask:
    assert app.config["SPIE_REDIS_URL"] is None
    return app


def test_delay_runs_nothing_before_commit_then_runs_after_it(in_process):
    run_id = leave_trace.delay("after-commit")
    run = db.session.get(JobRun, run_id)
    assert run is not None
    assert run.status == JobStatus.QUEUED
    assert run.arguments == {"args": ["after-commit"], "kwargs": {}}
    assert traces("after-commit") == []

    commit()

    [event] = traces("after-commit")
    assert event.actor_kind == ActorKind.SYSTEM
    assert event.actor_label == leave_trace.name
    run = run_of(run_id)
    assert run is not None
    assert run.status == JobStatus.FINISHED
    assert run.attempts == 1
    assert run.result == {"marker": "after-commit"}
    assert run.started_at is not None
    assert run.ended_at is not None
    assert run.started_at <= run.ended_at
    assert run.error is None


def test_rolled_back_work_enqueues_nothing(in_process):
    run_id = leave_trace.delay("rolled-back")
    rollback()
    commit()
    assert traces("rolled-back") == []
    assert run_of(run_id) is None


def test_failing_job_is_recorded_as_failed_and_does_not_undo_the_caller(in_process):
    caller = AuditEvent(
        actor_kind=ActorKind.SYSTEM, action="create", resource_type=TRACE, resource_id="caller"
    )
    db.session.add(caller)
    run_id = always_fails.delay("in-process-failure")
    commit()  # the failure is recorded, not raised into the caller

    assert len(traces("caller")) == 1
    assert traces("in-process-failure") == []  # the job's own writes are rolled back
    run = run_of(run_id)
    assert run is not None
    # No retry happens in process: the run is over, and says so.
    assert run.status == JobStatus.FAILED
    assert run.attempts == 1
    assert run.attempts == run.max_attempts
    assert "RuntimeError" in run.error
    assert "failed on purpose" in run.error
    assert run.ended_at is not None


def test_job_runs_are_visible_to_admins_only(in_process, client):
    ok_id = leave_trace.delay("visible")
    failed_id = always_fails.delay("visible-failure")
    commit()
    admin = AgentFactory(roles=[Role.ADMIN])
    api = api_as(client, admin)

    listed = api.get("/api/v1/admin/jobs?per_page=100")
    assert listed.status_code == 200
    by_id = {item["id"]: item for item in listed.json["items"]}
    assert by_id[ok_id]["status"] == "finished"
    assert by_id[ok_id]["name"] == leave_trace.name
    assert by_id[failed_id]["status"] == "failed"
    assert "failed on purpose" in by_id[failed_id]["error"]

    failed_only = api.get("/api/v1/admin/jobs?status=failed&per_page=100").json["items"]
    assert failed_id in {item["id"] for item in failed_only}
    assert ok_id not in {item["id"] for item in failed_only}

    one = api.get(f"/api/v1/admin/jobs/{failed_id}")
    assert one.status_code == 200
    assert one.json["attempts"] == 1
    assert api.get("/api/v1/admin/jobs/not-a-run").status_code == 404

    for role in (Role.REFERENT, Role.CHARGE_ORIENTATION, Role.MANAGER):
        other = api_as(client, AgentFactory(roles=[role]))
        assert other.get("/api/v1/admin/jobs").status_code == 403
        assert other.get(f"/api/v1/admin/jobs/{failed_id}").status_code == 403


def test_worker_command_needs_redis(in_process):
    result = in_process.test_cli_runner().invoke(args=["spie", "worker", "--burst"])
    assert result.exit_code != 0
    assert "SPIE_REDIS_URL is not set" in result.output


# --- Redis + rq ---------------------------------------------------------------------------

needs_redis = pytest.mark.skipif(
    not TEST_REDIS_URL, reason="needs a Redis server: set SPIE_TEST_REDIS_URL"
)


def _clean_rq(connection: Any) -> None:
    for key in connection.scan_iter("rq:*"):
        connection.delete(key)


@pytest.fixture
def redis_jobs(app: Flask) -> Iterator[Any]:
    """The app switched to Redis for one test: rq keys of the test database emptied before and
    after (this Redis database is reserved for the tests)."""
    previous = app.config["SPIE_REDIS_URL"]
    app.config["SPIE_REDIS_URL"] = TEST_REDIS_URL
    app.extensions.pop("spie_redis", None)
    from spie.jobs import get_redis

    connection = get_redis(app)
    assert connection is not None
    _clean_rq(connection)
    try:
        yield connection
    finally:
        _clean_rq(connection)
        app.config["SPIE_REDIS_URL"] = previous
        stale = app.extensions.pop("spie_redis", None)
        if stale is not None:
            stale.close()


def _queue(connection: Any, name: str) -> Any:
    from rq import Queue

    return Queue(name, connection=connection)


def _work(connection: Any, name: str, *, with_scheduler: bool = False) -> None:
    """Run the queue's jobs in this thread: the job sees the test's transaction, as it would
    see committed data in a real worker."""
    from rq import SimpleWorker

    worker = SimpleWorker([_queue(connection, name)], connection=connection)
    worker.work(burst=True, with_scheduler=with_scheduler)


@needs_redis
def test_enqueued_on_its_named_queue_after_commit_with_timeout_and_retry(redis_jobs):
    queue = _queue(redis_jobs, "notifications")
    run_id = always_fails.delay("rq-enqueue")
    assert queue.count == 0  # nothing before the commit
    commit()
    assert queue.job_ids == [run_id]
    assert _queue(redis_jobs, "default").count == 0
    rq_job = queue.fetch_job(run_id)
    assert rq_job is not None
    assert rq_job.func_name == "spie.jobs.core.execute"
    assert rq_job.args == (always_fails.name, run_id, ["rq-enqueue"], {})
    assert rq_job.timeout == 42
    assert rq_job.retries_left == 2
    assert rq_job.retry_intervals == [10, 60]
    run = run_of(run_id)
    assert run is not None
    assert (run.status, run.queue, run.max_attempts) == (JobStatus.QUEUED, "notifications", 3)


@needs_redis
def test_rolled_back_work_pushes_nothing_to_redis(redis_jobs):
    leave_trace.delay("rq-rollback")
    rollback()
    commit()
    assert _queue(redis_jobs, "default").count == 0
    assert list(redis_jobs.scan_iter("rq:job:*")) == []


@needs_redis
def test_worker_runs_the_job_and_the_run_is_finished(redis_jobs):
    run_id = leave_trace.delay("rq-success")
    commit()
    assert traces("rq-success") == []
    _work(redis_jobs, "default")

    rq_job = _queue(redis_jobs, "default").fetch_job(run_id)
    assert rq_job.get_status() == "finished"
    assert rq_job.return_value() == {"marker": "rq-success"}
    assert len(traces("rq-success")) == 1
    run = run_of(run_id)
    assert run is not None
    assert (run.status, run.attempts) == (JobStatus.FINISHED, 1)


@needs_redis
def test_failure_is_retried_with_backoff_then_failed_for_good(redis_jobs):
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    queue = _queue(redis_jobs, "notifications")
    scheduled = ScheduledJobRegistry(queue=queue)
    run_id = always_fails.delay("rq-retry")
    commit()

    # Attempt 1 fails: rq schedules the retry 10 s later (first backoff interval).
    before = dt.datetime.now(dt.UTC)
    _work(redis_jobs, "notifications")
    rq_job = queue.fetch_job(run_id)
    assert rq_job.get_status() == "scheduled"
    assert rq_job.retries_left == 1
    assert run_id in scheduled.get_job_ids()
    delay = scheduled.get_scheduled_time(run_id) - before
    assert dt.timedelta(seconds=8) <= delay <= dt.timedelta(seconds=12)
    run = run_of(run_id)
    assert run is not None
    assert (run.status, run.attempts, run.max_attempts) == (JobStatus.RETRYING, 1, 3)
    assert "failed on purpose (attempt 1)" in run.error

    # Time passes: the scheduler of a burst worker moves the due job back to its queue.
    for attempt in (2, 3):
        scheduled.schedule(rq_job, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        _work(redis_jobs, "notifications", with_scheduler=True)
        rq_job = queue.fetch_job(run_id)
        run = run_of(run_id)
        assert run is not None
        assert run.attempts == attempt
        assert f"(attempt {attempt})" in run.error
        if attempt == 2:
            assert rq_job.get_status() == "scheduled"
            assert rq_job.retries_left == 0
            assert run.status == JobStatus.RETRYING
            # Second interval of the backoff.
            delay = scheduled.get_scheduled_time(run_id) - dt.datetime.now(dt.UTC)
            assert dt.timedelta(seconds=50) <= delay <= dt.timedelta(seconds=61)

    assert rq_job.get_status() == "failed"
    assert run_id in FailedJobRegistry(queue=queue).get_job_ids()
    assert run.status == JobStatus.FAILED
    assert sample_jobs.attempts["rq-retry"] == 3
    assert traces("rq-retry") == []


@needs_redis
def test_transient_failure_recovers_on_retry(app, redis_jobs):
    app.config["SPIE_JOB_RETRY_INTERVALS"], previous = (
        [0, 0, 0],
        app.config["SPIE_JOB_RETRY_INTERVALS"],
    )
    try:
        run_id = fails_then_succeeds.delay("rq-transient", 2)
        commit()
    finally:
        app.config["SPIE_JOB_RETRY_INTERVALS"] = previous
    # No backoff configured: rq requeues at once and the burst worker keeps going.
    _work(redis_jobs, "imports")
    rq_job = _queue(redis_jobs, "imports").fetch_job(run_id)
    assert rq_job.get_status() == "finished"
    run = run_of(run_id)
    assert run is not None
    assert (run.status, run.attempts, run.error) == (JobStatus.FINISHED, 3, None)
    assert run.result == {"attempts": 3}
    assert len(traces("rq-transient")) == 1


@needs_redis
def test_worker_command_refuses_unknown_queues(app, redis_jobs):
    result = app.test_cli_runner().invoke(args=["spie", "worker", "--burst", "--queue", "nowhere"])
    assert result.exit_code != 0
    assert "unknown queues" in result.output


@needs_redis
def test_worker_command_runs_in_burst_mode(app, redis_jobs):
    from rq import Worker

    result = app.test_cli_runner().invoke(args=["spie", "worker", "--burst", "--queue", "default"])
    assert result.exit_code == 0, result.output
    assert Worker.all(connection=redis_jobs) == []  # it stopped and unregistered
