from django.contrib import messages
from django.utils.translation import gettext
from django.views.generic import ListView

from audit.models import AccessAction
from audit.recording import AccessRecordedPageMixin
from institutions.view_mixins import InstitutionPageMixin

from .selectors import student_search
from .stages import feature_definitions_with_stage


class StudentListView(AccessRecordedPageMixin, InstitutionPageMixin, ListView):
    template_name = "students/student_list.html"
    required_capability = "view_students"
    access_action = AccessAction.STUDENT_SEARCH
    paginate_by = 50
    context_object_name = "students"

    def get_queryset(self):
        # A NUL cannot be in any stored text (PostgreSQL refuses it in a query), so it matches nothing.
        query = self.request.GET.get("q", "")
        if "\x00" in query:
            messages.warning(self.request, gettext("The search holds a NUL character, which no stored text "
                                                   "contains: nothing matches. Type the search again."))
            return student_search(institution=self.institution).none()
        return student_search(institution=self.institution, query=query)


class FeatureListView(InstitutionPageMixin, ListView):
    template_name = "students/feature_list.html"
    required_capability = "view_aggregates"
    context_object_name = "features"

    def get_queryset(self):
        return feature_definitions_with_stage(institution=self.institution)
