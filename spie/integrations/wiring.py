"""Connect the integrations to the hooks other packages expose.

Imported by ``spie/integrations/__init__.py``, hence by every process that loads the models
(``spie.models`` imports ``spie.integrations.models``): a committed orientation decision is
offered to France Travail (``DECISION_COMMITTED_HOOKS`` of ``spie.orientation.decisions``).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _send_decision(decision_id: int) -> None:
    from spie.integrations.ft_sync import on_decision_committed

    on_decision_committed(decision_id)


def register() -> None:
    """Idempotent: registering twice (module reload in tests) adds the hook once."""
    try:
        from spie.orientation.decisions import DECISION_COMMITTED_HOOKS
    except ImportError:  # pragma: no cover - the orientation package provides it
        log.warning("DECISION_COMMITTED_HOOKS not found: decisions are sent by 'ft-sync' only")
        return
    if _send_decision not in DECISION_COMMITTED_HOOKS:
        DECISION_COMMITTED_HOOKS.append(_send_decision)


register()
