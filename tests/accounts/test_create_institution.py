"""An operator starts an institution from the command line (issue 18, item 6)."""

import io
import re

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import Invitation
from institutions.models import Institution, Membership, Role

pytestmark = pytest.mark.django_db
STRONG = "correct-horse-battery-staple-42"


def run(*args, **options):
    out = io.StringIO()
    call_command("create_institution", *args, stdout=out, **options)
    return out.getvalue()


def test_creates_the_institution_and_its_first_admin_joins_through_the_link(client, tenants, settings):
    a, _b = tenants
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    output = run("gamma", "--name", "Gamma College", "--admin-email", "dean@gamma.example.edu",
                 "--timezone", "Europe/Lisbon", "--site-url", "https://risk.example.edu")
    assert "Created Gamma College (/i/gamma/)" in output
    assert "here is the link" not in output  # a real backend delivers it; the link is not printed
    gamma = Institution.objects.get(slug="gamma")
    assert gamma.timezone == "Europe/Lisbon"
    invitation = Invitation.objects.for_institution(gamma).get()
    assert (invitation.email, invitation.role, invitation.invited_by) == ("dean@gamma.example.edu", Role.ADMIN, None)
    link = re.search(r"https://risk\.example\.edu(/\S+)", mail.outbox[-1].body).group(1)
    assert client.post(link, {"username": "dean", "password1": STRONG, "password2": STRONG}).status_code == 302
    dean = Membership.objects.for_institution(gamma).get(user__username="dean")
    assert dean.role == Role.ADMIN
    assert not Membership.objects.for_institution(a.institution).filter(user=dean.user).exists()
    assert client.get(reverse("member-list", args=["gamma"])).status_code == 200
    assert client.get(reverse("member-list", args=["alpha"])).status_code == 404


def test_with_the_console_backend_the_link_is_printed_for_the_operator(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    output = run("delta", "--name", "Delta", "--admin-email", "it@delta.example.edu")
    assert re.search(r"here is the link to hand over:\nhttp://127\.0\.0\.1:8000/accounts/invitations/delta/\S+/",
                     output)


@pytest.mark.parametrize(("args", "says"), [
    (["alpha", "--name", "Again", "--admin-email", "x@example.edu"], "slug"),
    (["epsilon", "--name", "Eps", "--admin-email", "not-an-address"], "not a valid email address"),
    (["zeta", "--name", "Zeta", "--admin-email", "x@example.edu", "--timezone", "Mars/Olympus"], "time zone"),
])
def test_bad_input_is_refused_with_a_message_and_creates_nothing(tenants, args, says):
    institutions_before = set(Institution.objects.values_list("slug", flat=True))
    with pytest.raises(CommandError, match=says):
        run(*args)
    assert set(Institution.objects.values_list("slug", flat=True)) == institutions_before
    assert not Invitation.objects.for_institution(tenants[0].institution).exists()
    assert mail.outbox == []


def test_invite_member_sends_a_new_link_that_replaces_the_old_one(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    first = re.search(r"8000(/\S+)", run("eta", "--name", "Eta", "--admin-email", "it@eta.example.edu")).group(1)
    out = io.StringIO()
    call_command("invite_member", "eta", "--email", "it@eta.example.edu", stdout=out)
    second = re.search(r"8000(/\S+)", out.getvalue()).group(1)
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200
    with pytest.raises(CommandError, match="no institution 'nowhere'"):
        call_command("invite_member", "nowhere", "--email", "x@example.edu", stdout=io.StringIO())
