"""The pathway after orientation: parcours, steps, offers, contracts, appointments, alerts,
diagnostics, équipe pluridisciplinaire cases; the adviser's caseload; pathway indicators."""

from spie.parcours import wiring as _wiring

_wiring.register()  # opens the pathway of every committed orientation decision
