from django.shortcuts import get_object_or_404
from django.views.generic import DetailView, ListView, TemplateView

from institutions.view_mixins import InstitutionPageMixin

from .feature_values import out_of_range_keys
from .models import Student
from .selectors import feature_definition_list, student_outcome_counts, student_search


class InstitutionHomeView(InstitutionPageMixin, TemplateView):
    """The institution's landing page: how many students, and what is known of their outcomes."""

    template_name = "institutions/home.html"
    required_capability = "view_aggregates"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["counts"] = student_outcome_counts(institution=self.institution)
        return context


class StudentListView(InstitutionPageMixin, ListView):
    template_name = "students/student_list.html"
    required_capability = "view_students"
    paginate_by = 50
    context_object_name = "students"

    def get_queryset(self):
        return student_search(institution=self.institution, query=self.request.GET.get("q", ""))


class StudentDetailView(InstitutionPageMixin, DetailView):
    template_name = "students/student_detail.html"
    required_capability = "view_students"
    context_object_name = "student"

    def get_object(self, queryset=None):
        return get_object_or_404(self.scoped(Student).select_related("advisor"), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        definitions = list(feature_definition_list(institution=self.institution))
        bad = out_of_range_keys(definitions, self.object.features)
        context["feature_rows"] = [
            {
                "definition": definition,
                "value": self.object.features.get(definition.key),
                "display": definition.category_labels.get(str(self.object.features.get(definition.key)))
                if definition.categories else self.object.features.get(definition.key),
                "out_of_range": definition.key in bad,
            }
            for definition in definitions
        ]
        return context


class FeatureListView(InstitutionPageMixin, ListView):
    template_name = "students/feature_list.html"
    required_capability = "view_aggregates"
    context_object_name = "features"

    def get_queryset(self):
        return feature_definition_list(institution=self.institution)
