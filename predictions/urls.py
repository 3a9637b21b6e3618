from django.urls import path

from . import views

urlpatterns = [
    path("models/", views.ModelVersionListView.as_view(), name="model-list"),
    path("models/retrain/", views.RetrainView.as_view(), name="model-retrain"),
    path("models/rollback/", views.RollbackView.as_view(), name="model-rollback"),
    path("models/settings/", views.PredictionSettingsView.as_view(), name="prediction-settings"),
    path("models/settings/concern-feature/", views.ConcernFeatureView.as_view(), name="prediction-concern-feature"),
    path("models/settings/history-retention/", views.HistoryRetentionView.as_view(),
         name="prediction-history-retention"),
    path("models/settings/outcome-mapping/", views.OutcomeMappingView.as_view(), name="prediction-outcome-mapping"),
    path("models/jobs/", views.PredictionJobListView.as_view(), name="prediction-job-list"),
    path("models/jobs/<int:pk>/progress/", views.JobProgressView.as_view(), name="prediction-job-progress"),
    path("models/rescore/", views.RescoreView.as_view(), name="prediction-rescore"),
    path("models/v<int:number>/", views.ModelVersionDetailView.as_view(), name="model-detail"),
    path("models/v<int:number>/promote/", views.PromoteView.as_view(), name="model-promote"),
    path("models/v<int:number>/reject/", views.RejectView.as_view(), name="model-reject"),
]
