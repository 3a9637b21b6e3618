"""The filter backend skips a FilterSet only when doing so cannot change the answer."""

from __future__ import annotations

import django_filters
import pytest
from django.urls import reverse
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from institutions.api.filters import DjangoFilterBackend
from institutions.scoping import institution_scope
from predictions.api_students import StudentRiskFilter
from students.models import EnrolmentStatus, Outcome, Student
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


def students_url(slug="alpha"):
    return reverse("api-student-list", args=[slug])


def filtered(filterset_class, query: str, institution):
    view = APIView()
    view.filterset_class = filterset_class
    request = APIView().initialize_request(APIRequestFactory().get("/" + query))
    with institution_scope(institution):
        queryset = Student.objects.order_by("id")
        return list(DjangoFilterBackend().filter_queryset(request, queryset, view))


def test_filters_still_apply_and_invalid_values_are_still_a_400(tenant_a, client_a):
    StudentFactory(institution=tenant_a.institution, external_id="LEAVE", status=EnrolmentStatus.ON_LEAVE)
    everyone = client_a.get(students_url()).json()
    assert everyone["count"] == 7
    on_leave = client_a.get(students_url(), {"status": "on_leave"}).json()
    assert [row["external_id"] for row in on_leave["results"]] == ["LEAVE"]
    dropped = client_a.get(students_url(), {"outcome": Outcome.DROPPED_OUT, "page_size": 50}).json()
    assert dropped["count"] == 2
    bad = client_a.get(students_url(), {"status": "nonsense"})
    assert bad.status_code == 400 and "status" in bad.json()["errors"]
    assert client_a.get(students_url(), {"updated_since": "yesterday"}).status_code == 400


def test_unrelated_parameters_give_the_unfiltered_list(tenant_a, client_a):
    plain = client_a.get(students_url(), {"page_size": 3, "page": 2}).json()
    assert plain["count"] == 6 and len(plain["results"]) == 3
    assert client_a.get(students_url(), {"unknown": "x"}).json()["count"] == 6


def test_filterset_runs_when_skipping_could_change_the_answer(tenant_a):
    class RequiredStatus(django_filters.FilterSet):
        status = django_filters.CharFilter(required=True)

    class DefaultNarrowing(django_filters.FilterSet):
        cohort = django_filters.CharFilter()

        def filter_queryset(self, queryset):
            return super().filter_queryset(queryset).filter(external_id="S001")

    class EmptyMeansSomething(django_filters.CharFilter):
        def filter(self, qs, value):
            return qs.filter(external_id="S002") if not value else qs

    class CustomFilter(django_filters.FilterSet):
        cohort = EmptyMeansSomething()

    class Range(django_filters.FilterSet):
        updated = django_filters.DateFromToRangeFilter(field_name="updated_at")

    institution = tenant_a.institution
    with pytest.raises(Exception, match="required"):
        filtered(RequiredStatus, "", institution)
    assert [s.external_id for s in filtered(DefaultNarrowing, "", institution)] == ["S001"]
    assert [s.external_id for s in filtered(CustomFilter, "?page=1", institution)] == ["S002"]
    # Suffixed parameter names of multi-value widgets (``updated_after``) count as naming the filter.
    assert filtered(Range, "?updated_after=2999-01-01", institution) == []
    assert len(filtered(Range, "?page=2", institution)) == 6
    assert [s.external_id for s in filtered(StudentRiskFilter, "?cohort=none", institution)] == []
