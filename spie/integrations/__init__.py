"""Partners: CAF flows, France Travail files and APIs (adapters, importers, jobs)."""

from spie.integrations import wiring as _wiring  # noqa: F401 - registers the decision hook
