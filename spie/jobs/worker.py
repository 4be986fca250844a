"""The rq worker process for spie's queues."""

from __future__ import annotations

import click
from flask import Flask

from spie.db import db
from spie.jobs.core import get_redis, queue_names, set_worker_app


def run_worker(app: Flask, queues: list[str] | None, burst: bool) -> None:
    from rq import Queue, Worker

    redis = get_redis(app)
    if redis is None:
        raise click.ClickException("SPIE_REDIS_URL is not set: jobs run in process, no worker.")
    names = queues or queue_names()
    unknown = set(names) - set(queue_names())
    if unknown:
        raise click.ClickException(f"unknown queues: {sorted(unknown)}")
    set_worker_app(app)
    # The work horse is a fork: drop pooled connections so that no socket is shared.
    if db.engine is not None:
        db.engine.dispose()
    worker = Worker([Queue(name, connection=redis) for name in names], connection=redis)
    worker.work(burst=burst, with_scheduler=True)
