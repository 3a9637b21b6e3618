"""What the courses app gives an institution when it is created (institutions never imports this app)."""

from __future__ import annotations

from .surveys import concern_type_create_defaults


def give_new_institution_default_concern_types(sender, *, institution, **kwargs) -> None:
    """``institutions.signals.institution_created`` receiver."""
    concern_type_create_defaults(institution=institution)
