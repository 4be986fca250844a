"""A test client whose requests behave as in production, inside the per-test transaction.

The root ``_transaction`` fixture pushes one application context for the whole test and the
test's objects live in the thread's scoped session. Used as is, every test-client request
would share both with the test:

- Flask reuses the pushed application context, so ``g`` (where flask-login caches the current
  user) leaks from one request to the next: an anonymous call made after an authenticated one
  runs as the earlier agent;
- the request works in the test's session: an error answer rolls back what the test only
  flushed (its setup is gone), and the session removed at teardown detaches its objects.

This client commits the test's pending work first (a SAVEPOINT release: the outer test
transaction still rolls everything back at the end), then serves the request in a session and
an application context of its own, as a separate process would. After a request, objects of
the test may be stale: ``db.session.expire_all()`` (or ``refresh``) before reading them again.
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from spie.db import commit, db


class IsolatedRequestsClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> Any:
        commit()
        test_session = db.session()
        db.session.registry.clear()
        try:
            with self.application.app_context():
                return super().open(*args, **kwargs)
        finally:
            db.session.remove()
            db.session.registry.set(test_session)
