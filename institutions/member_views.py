"""Administrators manage who belongs to their institution and with which role."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import TemplateView

from .forms import MemberAddForm, MemberRoleForm
from .models import Membership
from .services import MembershipError, membership_add, membership_change_role, membership_remove
from .view_mixins import InstitutionPageMixin


class MemberListView(InstitutionPageMixin, TemplateView):
    template_name = "institutions/member_list.html"
    required_capability = "manage_users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["members"] = self.scoped(Membership).select_related("user").order_by("user__username")
        context["form"] = kwargs.get("form") or MemberAddForm()
        context["role_form"] = MemberRoleForm()
        return context

    def post(self, request, *args, **kwargs):
        form = MemberAddForm(request.POST)
        if form.is_valid():
            try:
                membership, password = membership_add(institution=self.institution, **form.cleaned_data)
            except MembershipError as exc:
                form.add_error(None, exc.message)
            else:
                if password:
                    messages.success(request, f"Created {membership.user.username} with the one-time password "
                                              f"{password} — hand it over securely; it is not shown again.")
                else:
                    messages.success(request, f"Added {membership.user.username} as {membership.get_role_display()}.")
                return redirect("member-list", institution_slug=self.institution.slug)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class MemberUpdateView(InstitutionPageMixin, View):
    """POST ``role`` to change a member's role, or ``remove`` to take them out of the institution."""

    required_capability = "manage_users"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        membership = get_object_or_404(self.scoped(Membership).select_related("user"), pk=kwargs["pk"])
        try:
            if "remove" in request.POST:
                membership_remove(institution=self.institution, membership=membership, actor=request.user)
                messages.success(request, f"Removed {membership.user.username}; their students are unassigned.")
            else:
                form = MemberRoleForm(request.POST)
                if not form.is_valid():
                    raise MembershipError("Choose a valid role.")
                membership_change_role(institution=self.institution, membership=membership,
                                       role=form.cleaned_data["role"])
                messages.success(request, f"{membership.user.username} is now {membership.get_role_display()}.")
        except MembershipError as exc:
            messages.error(request, exc.message)
        return redirect("member-list", institution_slug=self.institution.slug)
