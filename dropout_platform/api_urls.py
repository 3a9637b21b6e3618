"""Every API route; institution resources nest under ``institutions/<slug>/``."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from courses.api import (
    AcademicSessionViewSet,
    ConcernTypeViewSet,
    CourseViewSet,
    EnrolmentViewSet,
    InstructorViewSet,
    RosterImportViewSet,
    SectionViewSet,
    SurveyViewSet,
)
from institutions.api.views import InstitutionDetailView, JobViewSet, MyInstitutionListView
from institutions.api.webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet
from interventions.api import CaseloadAssignmentView, FlagViewSet, InterventionTypeViewSet, InterventionViewSet
from interventions.api_alerts import AlertRuleViewSet, AlertViewSet, OfficeViewSet
from predictions.api import (
    LatestPredictionViewSet,
    ModelVersionViewSet,
    StudentLatestPredictionView,
    StudentPredictionHistoryView,
)
from predictions.api_scoring import ApplicantScoreView
from predictions.api_students import StudentViewSet  # students + filters on the latest risk
from privacy.api import StudentEraseView
from students.api import FeatureDefinitionViewSet, FeatureStageViewSet
from students.api_activity import ActivityEventViewSet
from students.api_bulk import StudentBulkUpsertView
from students.api_imports import ImportChangesView, ImportFileView
from students.api_uploads import UploadSessionCompleteView, UploadSessionDetailView, UploadSessionListView

router = SimpleRouter()
router.register("students", StudentViewSet, basename="api-student")
router.register("features", FeatureDefinitionViewSet, basename="api-feature")
router.register("stages", FeatureStageViewSet, basename="api-stage")
router.register("jobs", JobViewSet, basename="api-job")
router.register("webhooks", WebhookEndpointViewSet, basename="api-webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="api-webhook-delivery")
router.register("activity-events", ActivityEventViewSet, basename="api-activity-event")
router.register("intervention-types", InterventionTypeViewSet, basename="api-intervention-type")
router.register("interventions", InterventionViewSet, basename="api-intervention")
router.register("flags", FlagViewSet, basename="api-flag")
router.register("alerts", AlertViewSet, basename="api-alert")
router.register("offices", OfficeViewSet, basename="api-office")
router.register("alert-rules", AlertRuleViewSet, basename="api-alert-rule")
router.register("model-versions", ModelVersionViewSet, basename="api-model-version")
router.register("predictions", LatestPredictionViewSet, basename="api-latest-prediction")
router.register("terms", AcademicSessionViewSet, basename="api-term")
router.register("courses", CourseViewSet, basename="api-course")
router.register("sections", SectionViewSet, basename="api-section")
router.register("instructors", InstructorViewSet, basename="api-instructor")
router.register("enrolments", EnrolmentViewSet, basename="api-enrolment")
router.register("roster-imports", RosterImportViewSet, basename="api-roster-import")
router.register("concern-types", ConcernTypeViewSet, basename="api-concern-type")
router.register("surveys", SurveyViewSet, basename="api-survey")

urlpatterns = [
    path("institutions/", MyInstitutionListView.as_view(), name="api-institution-list"),
    path("institutions/<slug:institution_slug>/", InstitutionDetailView.as_view(), name="api-institution-detail"),
    path("institutions/<slug:institution_slug>/students/bulk-upsert/", StudentBulkUpsertView.as_view(),
         name="api-student-bulk-upsert"),
    path("institutions/<slug:institution_slug>/imports/", ImportFileView.as_view(), name="api-import-file"),
    path("institutions/<slug:institution_slug>/imports/uploads/", UploadSessionListView.as_view(),
         name="api-import-upload-sessions"),
    path("institutions/<slug:institution_slug>/imports/uploads/<str:session_id>/", UploadSessionDetailView.as_view(),
         name="api-import-upload-session"),
    path("institutions/<slug:institution_slug>/imports/uploads/<str:session_id>/complete/",
         UploadSessionCompleteView.as_view(), name="api-import-upload-session-complete"),
    path("institutions/<slug:institution_slug>/imports/<str:upload_id>/changes.csv", ImportChangesView.as_view(),
         name="api-import-changes"),
    path("institutions/<slug:institution_slug>/score/", ApplicantScoreView.as_view(), name="api-applicant-score"),
    path("institutions/<slug:institution_slug>/caseload-assignments/", CaseloadAssignmentView.as_view(),
         name="api-caseload-assignment"),
    path("institutions/<slug:institution_slug>/students/<int:student_id>/prediction/",
         StudentLatestPredictionView.as_view(), name="api-student-prediction"),
    path("institutions/<slug:institution_slug>/students/<int:student_id>/predictions/",
         StudentPredictionHistoryView.as_view(), name="api-student-prediction-history"),
    path("institutions/<slug:institution_slug>/students/<int:student_id>/erase/", StudentEraseView.as_view(),
         name="api-student-erase"),
    path("institutions/<slug:institution_slug>/", include(router.urls)),
]
