"""Platform staff administer institutions, not students: the staff admin lists each institution's
feature schema (definitions, no values) and nothing about any student. Students, their values and
their change history are read by the institution's own members, on its pages and API
(``tests/institutions/test_staff_admin_privacy.py`` browses every admin page to check)."""

from django.contrib import admin

from .models import FeatureDefinition


@admin.register(FeatureDefinition)
class FeatureDefinitionAdmin(admin.ModelAdmin):
    list_display = ["key", "label", "kind", "institution", "protected", "actionable", "position"]
    list_filter = ["institution", "kind", "protected", "actionable"]
    search_fields = ["key", "label"]
    # The range an import saw is taken from students' values: not shown to staff.
    exclude = ["seen_min_value", "seen_max_value"]
