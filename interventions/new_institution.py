"""What the interventions app gives an institution when it is created (institutions never imports this app)."""

from __future__ import annotations

from .services import intervention_type_create_defaults


def give_new_institution_default_types(sender, *, institution, **kwargs) -> None:
    """``institutions.signals.institution_created`` receiver."""
    intervention_type_create_defaults(institution=institution)
