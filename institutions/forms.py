from django import forms

from .models import Role


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
