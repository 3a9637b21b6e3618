"""The tenancy machinery: one current institution per unit of work, and managers that fail closed.

Every tenant-owned model uses :class:`TenantManager` as its default manager. Reading through it
requires either an active scope (``with institution_scope(inst): ...``, entered by the view and
viewset base classes and by every task) or an explicit ``.for_institution(inst)``. Anything else
raises :class:`MissingInstitutionScope` instead of quietly returning every institution's rows.
The deliberate escape hatch is ``.unscoped()``: greppable, and used only by platform admin,
migrations-like maintenance and the access helpers that resolve the scope itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from .models import Institution

_current_institution: ContextVar[Institution | None] = ContextVar("current_institution", default=None)
# Set only by the platform-staff admin site, whose job is administering every institution.
_platform_wide: ContextVar[bool] = ContextVar("platform_wide", default=False)


@dataclass(frozen=True)
class ViewerRestriction:
    """Who is reading, when what they may read is narrower than their institution (need-to-know).

    Set by the page and API base classes for a member whose institution turned need-to-know on and
    whose role does not see every student (``institutions.access.viewer_restriction_for``); every
    tenant queryset built while it is set passes through the registered row rules.
    """

    institution_id: int
    user_id: int


_viewer_restriction: ContextVar[ViewerRestriction | None] = ContextVar("viewer_restriction", default=None)
# Row rules narrow a freshly bound tenant queryset for the current ViewerRestriction. Registered by
# the app that knows the rule (interventions: the need-to-know rule, which needs caseloads, grants
# and flags) at ready(), so that this lowest layer never imports the apps above it.
RowRule = Callable[["TenantQuerySet", ViewerRestriction], "TenantQuerySet"]
_row_rules: list[RowRule] = []


def register_row_rule(rule: RowRule) -> None:
    if rule not in _row_rules:
        _row_rules.append(rule)


@contextlib.contextmanager
def viewer_restriction(restriction: ViewerRestriction | None) -> Iterator[ViewerRestriction | None]:
    """Apply ``restriction`` (None: none) to every tenant queryset built in the enclosed block."""
    token = _viewer_restriction.set(restriction)
    try:
        yield restriction
    finally:
        _viewer_restriction.reset(token)


def current_viewer_restriction() -> ViewerRestriction | None:
    return _viewer_restriction.get()


class MissingInstitutionScope(RuntimeError):
    """A tenant model was queried with no institution scope: a bug, never a user error."""


class InstitutionScopeMismatch(RuntimeError):
    """Code inside one institution's scope asked for another institution's rows."""


@contextlib.contextmanager
def institution_scope(institution: Institution) -> Iterator[Institution]:
    """Make ``institution`` the current one for the enclosed block (thread- and task-local).

    Nested scopes restore the outer one on exit, also when the block raises.
    """
    if institution is None or institution.pk is None:
        raise ValueError("institution_scope needs a saved Institution")
    token = _current_institution.set(institution)
    try:
        yield institution
    finally:
        _current_institution.reset(token)


@contextlib.contextmanager
def platform_wide_scope() -> Iterator[None]:
    """Let tenant managers return every institution's rows: the staff admin site only."""
    token = _platform_wide.set(True)
    try:
        yield
    finally:
        _platform_wide.reset(token)


def current_institution() -> Institution | None:
    return _current_institution.get()


class TenantQuerySet(models.QuerySet):
    """A queryset bound to one institution: ``create``/``bulk_create`` fill in and check it."""

    _bound_institution_id: int | None = None

    def _clone(self):
        clone = super()._clone()
        clone._bound_institution_id = self._bound_institution_id
        return clone

    def _bind(self, institution_id: int) -> TenantQuerySet:
        qs = self.filter(institution_id=institution_id)
        qs._bound_institution_id = institution_id
        restriction = _viewer_restriction.get()
        if restriction is not None:
            if restriction.institution_id != institution_id:
                raise InstitutionScopeMismatch(
                    f"asked for institution {institution_id} while reading as a member of {restriction.institution_id}"
                )
            for rule in _row_rules:
                qs = rule(qs, restriction)
        return qs

    def _check_object(self, obj: models.Model) -> None:
        if self._bound_institution_id is None:
            return
        if obj.institution_id is None:
            obj.institution_id = self._bound_institution_id
        elif obj.institution_id != self._bound_institution_id:
            raise InstitutionScopeMismatch(
                f"{type(obj).__name__} belongs to institution {obj.institution_id}, "
                f"not the scoped institution {self._bound_institution_id}"
            )

    def create(self, **kwargs):
        obj = self.model(**kwargs)
        self._check_object(obj)
        self._for_write = True
        obj.save(force_insert=True, using=self.db)
        return obj

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            self._check_object(obj)
        return super().bulk_create(objs, *args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of every tenant model: refuses to read without an institution."""

    def get_queryset(self) -> TenantQuerySet:
        institution = _current_institution.get()
        if institution is None and _platform_wide.get():
            return self._base_queryset()
        if institution is None:
            raise MissingInstitutionScope(
                f"{self.model.__name__}.objects used without an institution scope; "
                "use .for_institution(inst), run inside institution_scope(inst), "
                "or, for platform maintenance only, .unscoped()"
            )
        return self._base_queryset()._bind(institution.pk)

    def _base_queryset(self) -> TenantQuerySet:
        return TenantQuerySet(self.model, using=self._db, hints=self._hints)

    def for_institution(self, institution: Institution) -> TenantQuerySet:
        if institution is None or institution.pk is None:
            raise ValueError("for_institution needs a saved Institution")
        active = _current_institution.get()
        if active is not None and active.pk != institution.pk:
            raise InstitutionScopeMismatch(
                f"asked for institution {institution.pk} inside the scope of institution {active.pk}"
            )
        return self._base_queryset()._bind(institution.pk)

    def unscoped(self) -> TenantQuerySet:
        """Every institution's rows. Platform maintenance only; never in request handling."""
        return self._base_queryset()


class TenantModel(models.Model):
    """Base for tenant-owned tables: a non-null institution and the fail-closed manager.

    Subclasses must start every index and unique constraint with ``institution`` (Citus-ready, and
    fast per institution), and have at least one that covers every row (not partial): it serves
    lookups by institution and deleting an institution, so the foreign key itself needs no
    single-column index of its own (one more index for every row written would buy nothing; a
    test checks every tenant model). Other foreign keys use ``db_index=False`` unless a composite
    covers them.
    """

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    objects = TenantManager()
    # Django's internals (deletion, FK access from an already-scoped row) go through this one.
    all_institutions = models.Manager()  # noqa: DJ012 - the managers belong together here

    class Meta:
        abstract = True
        base_manager_name = "all_institutions"


def enter_scope(institution: Institution, restriction: ViewerRestriction | None = None):
    """Low-level entry for request handlers that cannot use a ``with`` block; pair with exit_scope."""
    if institution is None or institution.pk is None:
        raise ValueError("enter_scope needs a saved Institution")
    return _current_institution.set(institution), _viewer_restriction.set(restriction)


def exit_scope(token) -> None:
    institution_token, restriction_token = token
    _viewer_restriction.reset(restriction_token)
    _current_institution.reset(institution_token)
