"""The students API, extended with filters on the latest risk.

``students`` cannot know about predictions (the apps depend one way), so the risk filters live
here and ``dropout_platform/api_urls.py`` registers this subclass at ``/students/``.
"""

import django_filters
from django.db.models import Exists, OuterRef

from institutions.api.filters import StrictBooleanFilter
from students.api import StudentFilter
from students.api import StudentViewSet as BaseStudentViewSet

from .models import LatestPrediction, RiskBand


class StudentRiskFilter(StudentFilter):
    band = django_filters.ChoiceFilter(
        choices=RiskBand.choices, method="filter_band", help_text="Risk band of the latest prediction."
    )
    flagged = StrictBooleanFilter(
        method="filter_flagged", help_text="Flagged by the institution's rule in the latest scoring run."
    )

    def filter_band(self, queryset, name, value):
        # Runs inside the request's institution scope, like the queryset it narrows.
        return queryset.filter(pk__in=LatestPrediction.objects.filter(band=value).values("student_id"))

    def filter_flagged(self, queryset, name, value):
        if value is None:
            return queryset
        # EXISTS / NOT EXISTS: an anti-join, where NOT IN (flagged students) would rescan the list per
        # student once it outgrew work_mem (issue 23).
        flagged = Exists(LatestPrediction.objects.filter(flagged=True, student_id=OuterRef("pk")))
        return queryset.filter(flagged if value else ~flagged)


class StudentViewSet(BaseStudentViewSet):
    __doc__ = BaseStudentViewSet.__doc__ + " Filter by ``band`` or ``flagged`` of the latest prediction."

    filterset_class = StudentRiskFilter
