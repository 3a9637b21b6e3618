"""The workspace's API routes, under ``/api/v1/institutions/<slug>/`` (see dropout_platform/urls.py)."""

from rest_framework.routers import SimpleRouter

from .api import NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="api-notification")

urlpatterns = router.urls
