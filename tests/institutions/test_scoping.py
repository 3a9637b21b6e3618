import pytest
from django.apps import apps
from django.db import connection

from institutions.scoping import (
    InstitutionScopeMismatch,
    MissingInstitutionScope,
    TenantModel,
    current_institution,
    institution_scope,
)
from students.models import Student

pytestmark = pytest.mark.django_db


def test_tenant_manager_refuses_to_read_without_a_scope(tenants):
    with pytest.raises(MissingInstitutionScope):
        list(Student.objects.all())
    with pytest.raises(MissingInstitutionScope):
        Student.objects.count()
    with pytest.raises(MissingInstitutionScope):
        Student.objects.filter(external_id="S001").exists()


def test_scope_returns_only_the_scoped_institutions_rows(tenants):
    a, b = tenants
    with institution_scope(a.institution):
        ids = set(Student.objects.values_list("id", flat=True))
    assert ids == {s.id for s in a.students}
    assert not ids & {s.id for s in b.students}


def test_for_institution_works_without_an_active_scope(tenants):
    _a, b = tenants
    assert Student.objects.for_institution(b.institution).count() == len(b.students)
    assert set(Student.objects.for_institution(b.institution).values_list("institution_id", flat=True)) == {
        b.institution.id
    }


def test_nested_scope_restores_the_outer_one(tenants):
    a, b = tenants
    with institution_scope(a.institution):
        with institution_scope(b.institution):
            assert current_institution() == b.institution
            assert set(Student.objects.values_list("institution_id", flat=True)) == {b.institution.id}
        assert current_institution() == a.institution
        assert set(Student.objects.values_list("institution_id", flat=True)) == {a.institution.id}
    assert current_institution() is None


def test_scope_does_not_leak_after_an_exception(tenants):
    a, _ = tenants
    with pytest.raises(ZeroDivisionError), institution_scope(a.institution):
        _ = 1 / 0
    assert current_institution() is None
    with pytest.raises(MissingInstitutionScope):
        Student.objects.count()


def test_asking_for_another_institution_inside_a_scope_is_refused(tenants):
    a, b = tenants
    with institution_scope(a.institution), pytest.raises(InstitutionScopeMismatch):
        Student.objects.for_institution(b.institution)


def test_create_through_a_bound_queryset_fills_in_and_checks_the_institution(tenants):
    a, b = tenants
    student = Student.objects.for_institution(a.institution).create(external_id="NEW-1")
    assert student.institution_id == a.institution.id
    with pytest.raises(InstitutionScopeMismatch):
        Student.objects.for_institution(a.institution).create(external_id="NEW-2", institution=b.institution)
    with pytest.raises(InstitutionScopeMismatch):
        Student.objects.for_institution(a.institution).bulk_create([Student(institution=b.institution,
                                                                             external_id="NEW-3")])
    assert not Student.objects.for_institution(b.institution).filter(external_id__startswith="NEW").exists()


def test_unscoped_is_the_explicit_way_to_read_every_institution(tenants):
    a, b = tenants
    assert Student.objects.unscoped().count() == len(a.students) + len(b.students)


def test_same_external_id_may_exist_in_two_institutions(tenants):
    a, b = tenants
    assert {s.external_id for s in a.students} == {s.external_id for s in b.students}


def _leading_fields_of_full_indexes(model) -> list[str]:
    """First field of each index and unique constraint of ``model`` that covers every row."""
    leading = [index.fields[0].lstrip("-") for index in model._meta.indexes
               if index.fields and getattr(index, "condition", None) is None]
    leading += [constraint.fields[0] for constraint in model._meta.constraints
                if getattr(constraint, "fields", None) and getattr(constraint, "condition", None) is None]
    return leading


def test_every_tenant_table_is_indexed_by_institution_without_a_single_column_index():
    # The institution foreign key has no index of its own (db_index=False); each tenant model
    # must therefore have a full (non-partial) index or unique constraint led by the institution,
    # which serves per-institution reads and the cascade when an institution is deleted.
    tenant_models = [model for model in apps.get_models() if issubclass(model, TenantModel)]
    assert len(tenant_models) >= 15
    uncovered = [model._meta.label for model in tenant_models
                 if "institution" not in _leading_fields_of_full_indexes(model)]
    assert uncovered == []
    assert all(not model._meta.get_field("institution").db_index for model in tenant_models)


def test_database_has_an_institution_led_index_on_every_tenant_table():
    tenant_models = [model for model in apps.get_models() if issubclass(model, TenantModel)]
    with connection.cursor() as cursor:
        for model in tenant_models:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            led = [name for name, info in constraints.items()
                   if (info["index"] or info["unique"]) and info["columns"] and info["columns"][0] == "institution_id"]
            single = [name for name, info in constraints.items()
                      if (info["index"] or info["unique"]) and info["columns"] == ["institution_id"]
                      and not info["unique"]]
            assert led, model._meta.db_table
            assert single == [], model._meta.db_table
