"""Administrators manage who belongs to their institution and with which role."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from .forms import MemberRoleForm
from .models import Membership
from .services import MembershipError, institution_set_default_language, membership_change_role, membership_remove
from .view_mixins import InstitutionPageMixin


class MemberListView(InstitutionPageMixin, TemplateView):
    """The members and their roles. New members join through an emailed invitation (accounts app):
    no page attaches an account that exists elsewhere without its owner accepting."""

    template_name = "institutions/member_list.html"
    required_capability = "manage_users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["members"] = self.scoped(Membership).select_related("user").order_by("user__username")
        context["role_form"] = MemberRoleForm()
        context["languages"] = settings.LANGUAGES
        return context


class MemberUpdateView(InstitutionPageMixin, View):
    """POST ``role`` to change a member's role, or ``remove`` to take them out of the institution."""

    required_capability = "manage_users"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        membership = get_object_or_404(self.scoped(Membership).select_related("user"), pk=kwargs["pk"])
        try:
            if "remove" in request.POST:
                membership_remove(institution=self.institution, membership=membership, actor=request.user)
                messages.success(request, _("Removed %(username)s; their students are unassigned.") % {
                    "username": membership.user.username})
            else:
                form = MemberRoleForm(request.POST)
                if not form.is_valid():
                    raise MembershipError(_("Choose a valid role."))
                membership_change_role(institution=self.institution, membership=membership,
                                       role=form.cleaned_data["role"])
                messages.success(request, _("%(username)s is now %(role)s.") % {
                    "username": membership.user.username, "role": membership.get_role_display()})
        except MembershipError as exc:
            messages.error(request, exc.message)
        return redirect("member-list", institution_slug=self.institution.slug)


class InstitutionLanguageView(InstitutionPageMixin, View):
    """POST ``default_language``: the institution's default language (members' own choices win)."""

    required_capability = "manage_users"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        """The institution's default language (POST ``default_language``); members' own choices win."""
        try:
            changed = institution_set_default_language(institution=self.institution,
                                                       language=request.POST.get("default_language", ""))
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            if changed:
                messages.success(request, _("The default language of %(name)s is now %(language)s.") % {
                    "name": self.institution.name, "language": self.institution.get_default_language_display()})
            else:
                messages.info(request, _("Nothing changed: that was already the default language."))
        return redirect("member-list", institution_slug=self.institution.slug)
