"""Orientation of new beneficiaries: cases and their clocks, RIO sessions, the référentiel,
decisions (see docs/orientation.md).

Importing the package registers its hooks (``spie.orientation.wiring``): a manual referral
opens an orientation case.
"""

from spie.orientation import wiring as _wiring  # noqa: F401 - registers REFERRAL_HOOKS
