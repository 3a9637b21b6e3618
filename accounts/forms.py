from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from institutions.models import Role


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"), help_text=_("The invitation link is sent to this address."))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.ADVISOR)


class InvitedAccountForm(UserCreationForm):
    """A new account for an invited address: the person chooses the username and the password."""

    class Meta(UserCreationForm.Meta):
        fields = ("username", "first_name", "last_name")
