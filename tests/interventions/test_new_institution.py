"""Default intervention types come with a new institution, however it is created."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model

from demo.builder import build_demo_institutions
from institutions.models import Institution
from institutions.services import institution_create
from interventions.models import DEFAULT_INTERVENTION_TYPES, InterventionType

pytestmark = pytest.mark.django_db


def type_keys(institution):
    types = InterventionType.objects.for_institution(institution).order_by("position")
    return list(types.values_list("key", flat=True))


def test_creating_an_institution_gives_it_the_default_intervention_types_and_nobody_else_any(tenants):
    a, _ = tenants
    assert type_keys(a.institution) == []
    created = institution_create(slug="gamma", name="Gamma College", timezone="Europe/Lisbon")
    assert type_keys(created) == [key for key, _label in DEFAULT_INTERVENTION_TYPES]
    assert type_keys(a.institution) == []


def test_an_institution_added_in_the_admin_gets_the_default_intervention_types(client, tenants):
    staff = get_user_model().objects.create_superuser("staff", "staff@example.org", "pw-for-tests")
    client.force_login(staff)
    # The membership inline's prefix is "-1": Membership.institution has no reverse name.
    response = client.post("/admin/institutions/institution/add/", {
        "slug": "delta", "name": "Delta University", "timezone": "UTC", "default_language": "en",
        "-1-TOTAL_FORMS": "0", "-1-INITIAL_FORMS": "0",
        "-1-MIN_NUM_FORMS": "0", "-1-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302, getattr(response, "context", None) and response.context["errors"]
    assert type_keys(Institution.objects.get(slug="delta")) == [key for key, _label in DEFAULT_INTERVENTION_TYPES]


@pytest.mark.slow
def test_demo_institutions_start_with_the_default_intervention_types():
    build_demo_institutions()
    for institution in Institution.objects.all():
        assert type_keys(institution) == [key for key, _label in DEFAULT_INTERVENTION_TYPES]


def test_data_migration_gives_defaults_only_to_institutions_without_any_type(tenants):
    a, b = tenants
    InterventionType.objects.for_institution(b.institution).create(key="home_visit", label="Home visit")
    migration = importlib.import_module("interventions.migrations.0004_default_types_for_existing_institutions")
    migration.create_default_types(django_apps, schema_editor=None)
    assert type_keys(a.institution) == [key for key, _label in DEFAULT_INTERVENTION_TYPES]
    assert type_keys(b.institution) == ["home_visit"]
