from django.contrib import admin

from .models import FeatureDefinition, Student, StudentChange


@admin.register(FeatureDefinition)
class FeatureDefinitionAdmin(admin.ModelAdmin):
    list_display = ["key", "label", "kind", "institution", "protected", "actionable", "position"]
    list_filter = ["institution", "kind", "protected", "actionable"]
    search_fields = ["key", "label"]


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "name", "institution", "program", "cohort", "status", "outcome", "advisor"]
    list_filter = ["institution", "outcome", "status"]
    search_fields = ["external_id", "name", "email"]
    raw_id_fields = ["advisor"]
    list_select_related = ["institution", "advisor"]


@admin.register(StudentChange)
class StudentChangeAdmin(admin.ModelAdmin):
    list_display = ["student", "institution", "source", "created", "changed_at"]
    list_filter = ["institution", "source"]
    raw_id_fields = ["student", "job", "actor"]
