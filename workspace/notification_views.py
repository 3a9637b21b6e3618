"""The notifications page (list, open one, mark all read) and the digest preferences page. Thin:
reads from workspace.notification_selectors, writes through workspace.notifications."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext, ngettext
from django.views import View
from django.views.generic import FormView, ListView

from institutions.view_mixins import InstitutionPageMixin

from . import notifications
from .forms import NotificationPreferenceForm
from .notification_selectors import notification_list, notification_preference_get

# Every member has notifications of their own, whatever their role.
ANY_MEMBER = "view_aggregates"


class NotificationListView(InstitutionPageMixin, ListView):
    template_name = "workspace/notification_list.html"
    required_capability = ANY_MEMBER
    context_object_name = "notifications"
    paginate_by = 50

    def unread_only(self) -> bool:
        return self.request.GET.get("unread") in ("1", "true")

    def get_queryset(self):
        return notification_list(institution=self.institution, user=self.request.user, unread=self.unread_only())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["unread_only"] = self.unread_only()
        return context


class NotificationOpenView(InstitutionPageMixin, View):
    """Opening a notification marks it read and leads to what it is about (inside this institution)."""

    required_capability = ANY_MEMBER

    def get(self, request, *args, **kwargs):
        try:
            notification = notifications.notification_open(
                institution=self.institution, user=request.user, notification_id=kwargs["pk"])
        except notifications.NotificationNotFound:
            raise Http404("No such notification.") from None
        if notification.url.startswith(f"/i/{self.institution.slug}/"):
            return redirect(notification.url)
        return redirect("notification-list", self.institution.slug)


class NotificationMarkAllReadView(InstitutionPageMixin, View):
    required_capability = ANY_MEMBER
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        marked = notifications.notifications_mark_all_read(institution=self.institution, user=request.user)
        if marked:
            messages.success(request, ngettext("%(count)s notification marked read.",
                                               "%(count)s notifications marked read.", marked) % {"count": marked})
        else:
            messages.success(request, gettext("Nothing was unread."))
        return redirect("notification-list", self.institution.slug)


class NotificationPreferencesView(InstitutionPageMixin, FormView):
    template_name = "workspace/notification_preferences.html"
    required_capability = ANY_MEMBER
    form_class = NotificationPreferenceForm

    def get_initial(self):
        preference = notification_preference_get(institution=self.institution, user=self.request.user)
        return {"digest": preference.digest}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["preference"] = notification_preference_get(institution=self.institution, user=self.request.user)
        return context

    def form_valid(self, form):
        preference = notifications.notification_preference_set(
            institution=self.institution, user=self.request.user, digest=form.cleaned_data["digest"])
        messages.success(self.request, gettext("Email digest: %(choice)s.") % {
            "choice": preference.get_digest_display()})
        return redirect("notification-preferences", self.institution.slug)
