from django import forms

from .models import Role


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="An existing account, or a new one to create.")
    email = forms.EmailField(required=False, help_text="Used only when a new account is created.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ADVISOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
