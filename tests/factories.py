"""factory_boy factories. Tests always build (at least) two institutions: see conftest.py."""

import datetime

import factory
from django.contrib.auth import get_user_model

from institutions.models import Institution, Membership, Role
from students.models import FeatureDefinition, FeatureKind, Outcome, Student


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"institution-{n}")
    name = factory.Sequence(lambda n: f"Institution {n}")
    timezone = "Europe/Lisbon"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.edu")
    password = factory.django.Password("pw-for-tests")


class TenantFactory(factory.django.DjangoModelFactory):
    """Tenant models are created through the unscoped queryset: factories are test set-up."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.for_institution(kwargs["institution"]).create(*args, **kwargs)


class MembershipFactory(TenantFactory):
    class Meta:
        model = Membership

    institution = factory.SubFactory(InstitutionFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ADVISOR


class FeatureDefinitionFactory(TenantFactory):
    class Meta:
        model = FeatureDefinition

    institution = factory.SubFactory(InstitutionFactory)
    key = factory.Sequence(lambda n: f"feature_{n}")
    label = factory.LazyAttribute(lambda f: f.key.replace("_", " ").capitalize())
    kind = FeatureKind.NUMERIC
    min_value = 0.0
    max_value = 100.0


class StudentFactory(TenantFactory):
    class Meta:
        model = Student

    institution = factory.SubFactory(InstitutionFactory)
    external_id = factory.Sequence(lambda n: f"S{n:06d}")
    name = factory.Faker("name")
    program = "Nursing"
    cohort = "2024"
    outcome = Outcome.ENROLLED
    features = factory.Dict({})


class InterventionTypeFactory(TenantFactory):
    class Meta:
        model = "interventions.InterventionType"

    institution = factory.SubFactory(InstitutionFactory)
    key = factory.Sequence(lambda n: f"type_{n}")
    label = factory.LazyAttribute(lambda t: t.key.replace("_", " ").capitalize())


class InterventionFactory(TenantFactory):
    class Meta:
        model = "interventions.Intervention"

    institution = factory.SubFactory(InstitutionFactory)
    student = factory.SubFactory(StudentFactory, institution=factory.SelfAttribute("..institution"))
    intervention_type = factory.SubFactory(InterventionTypeFactory, institution=factory.SelfAttribute("..institution"))
    date = factory.LazyFunction(datetime.date.today)
    notes = "Talked about the timetable."


class FlagFactory(TenantFactory):
    class Meta:
        model = "interventions.Flag"

    institution = factory.SubFactory(InstitutionFactory)
    student = factory.SubFactory(StudentFactory, institution=factory.SelfAttribute("..institution"))
    reason = "Missed three tutorials"
