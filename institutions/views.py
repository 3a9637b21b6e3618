from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect
from django.views.generic import TemplateView

from .selectors import membership_list_for_user


class HomeView(LoginRequiredMixin, TemplateView):
    """Where a user lands after logging in: straight into their only institution, or a chooser."""

    template_name = "institutions/chooser.html"

    def get(self, request, *args, **kwargs):
        memberships = list(membership_list_for_user(user=request.user))
        if len(memberships) == 1:
            return redirect("institution-home", institution_slug=memberships[0].institution.slug)
        return self.render_to_response(self.get_context_data(memberships=memberships))
