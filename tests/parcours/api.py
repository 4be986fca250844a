"""Helpers for the pathway tests: the shared ones (the root ``client`` fixture already gives
each request its own session and application context, see ``tests/isolation.py``)."""

from tests.helpers import api_as, fresh, if_match

__all__ = ["api_as", "fresh", "if_match"]
