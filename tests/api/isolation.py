"""Kept for imports written before the client moved to ``tests.isolation``."""

from tests.isolation import IsolatedRequestsClient

__all__ = ["IsolatedRequestsClient"]
