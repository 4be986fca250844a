"""Connect the orientation package to the hooks other packages expose.

Imported by ``spie/orientation/__init__.py``, hence as soon as anything imports an orientation
module (``spie.models`` does, for every app, job and CLI process): the manual referral of a
person (``POST /api/v1/persons``) opens their orientation case in the same transaction.
"""

from __future__ import annotations


def register() -> None:
    """Idempotent: registering twice (module reload in tests) adds the hook once."""
    from spie.orientation.clock_events import manual_referral_opened
    from spie.persons.services import REFERRAL_HOOKS

    if manual_referral_opened not in REFERRAL_HOOKS:
        REFERRAL_HOOKS.append(manual_referral_opened)


register()
