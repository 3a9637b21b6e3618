import pytest

from students.demo import build_demo_institutions
from students.models import FeatureDefinition, Outcome, Student

pytestmark = pytest.mark.django_db


def test_demo_builds_the_uci_institution_with_the_files_outcome_counts():
    counts = build_demo_institutions()
    assert counts["demo"] == 4424
    from institutions.models import Institution

    demo = Institution.objects.get(slug="demo")
    by_outcome = {o: Student.objects.for_institution(demo).filter(outcome=o).count() for o in Outcome.values}
    assert by_outcome[Outcome.DROPPED_OUT] == 1421
    assert by_outcome[Outcome.GRADUATED] == 2209
    assert by_outcome[Outcome.ENROLLED] == 794
    schema = FeatureDefinition.objects.for_institution(demo)
    assert set(schema.filter(protected=True).values_list("key", flat=True)) >= {
        "gender", "age_at_enrolment", "nationality", "marital_status"}
    assert set(schema.filter(actionable=True).values_list("key", flat=True)) >= {
        "tuition_up_to_date", "debtor", "units_1st_approved", "units_1st_enrolled"}
    enrolled = Student.objects.for_institution(demo).filter(outcome=Outcome.ENROLLED)
    assert enrolled.filter(advisor__username="ana").exists() and enrolled.filter(advisor__username="ben").exists()
    assert not enrolled.filter(advisor__isnull=True).exists()


def test_demo_is_idempotent_and_keeps_the_second_institution_separate():
    build_demo_institutions()
    again = build_demo_institutions()
    assert again == {"demo": 4424, "northfield": 177}
    assert Student.objects.unscoped().count() == 4424 + 177
