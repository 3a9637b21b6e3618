from django.urls import path

from . import import_views, schema_views, views

urlpatterns = [
    path("students/", views.StudentListView.as_view(), name="student-list"),
    path("data-schema/", views.FeatureListView.as_view(), name="feature-list"),
    path("data-schema/manage/", schema_views.FeatureSchemaView.as_view(), name="feature-schema"),
    path("data-schema/stages/", schema_views.FeatureStagesView.as_view(), name="feature-stages"),
    path("data-schema/<int:pk>/edit/", schema_views.FeatureEditView.as_view(), name="feature-edit"),
    path("imports/", import_views.ImportUploadView.as_view(), name="import-upload"),
    path("imports/<int:pk>/", import_views.ImportDetailView.as_view(), name="import-detail"),
    path("imports/<int:pk>/mapping/", import_views.ImportMappingView.as_view(), name="import-mapping"),
    path("imports/<int:pk>/read-again/", import_views.ImportReadAgainView.as_view(), name="import-read-again"),
    path("imports/<int:pk>/commit/", import_views.ImportCommitView.as_view(), name="import-commit"),
    path("imports/<int:pk>/discard/", import_views.ImportDiscardView.as_view(), name="import-discard"),
    path("imports/<int:pk>/errors.csv", import_views.ImportErrorsCsvView.as_view(), name="import-errors-csv"),
    path("imports/<int:pk>/clear-blank/", import_views.ImportClearBlankColumnsView.as_view(),
         name="import-clear-blank"),
    path("imports/<int:pk>/changes.csv", import_views.ImportChangesCsvView.as_view(), name="import-changes-csv"),
]
