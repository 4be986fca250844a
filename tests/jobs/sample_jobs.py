"""Jobs declared for the tests: each leaves a trace (an audit event whose ``resource_id`` is
the marker given) so that a test sees whether, when and how often it ran."""

from __future__ import annotations

from collections import Counter

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.jobs import job

TRACE = "test_job"
attempts: Counter[str] = Counter()


@job(queue="default", retries=0)
def leave_trace(marker: str) -> dict[str, str]:
    record(AuditAction.CREATE, TRACE, marker)
    return {"marker": marker}


@job(queue="notifications", timeout=42, retries=2)
def always_fails(marker: str) -> None:
    attempts[marker] += 1
    record(AuditAction.CREATE, TRACE, marker)  # rolled back with the failure
    raise RuntimeError(f"job {marker} failed on purpose (attempt {attempts[marker]})")


@job(queue="imports", retries=3)
def fails_then_succeeds(marker: str, failures: int) -> dict[str, int]:
    attempts[marker] += 1
    if attempts[marker] <= failures:
        raise RuntimeError(f"transient failure {attempts[marker]}")
    record(AuditAction.CREATE, TRACE, marker)
    return {"attempts": attempts[marker]}
