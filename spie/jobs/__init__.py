"""Background jobs on rq, with an in-process fallback for the zero-install default.

Declare a job with :func:`job`; call ``my_job.delay(...)`` from a service: the job is
enqueued only once the current transaction commits (a rolled-back request enqueues nothing).
Arguments must be JSON-serialisable ids and options, never personal data.

Without ``SPIE_REDIS_URL`` the job runs in the same process right after the commit.
"""

from spie.jobs.core import JobFunction, enqueue, get_redis, job, queue_names

__all__ = ["JobFunction", "enqueue", "get_redis", "job", "queue_names"]
