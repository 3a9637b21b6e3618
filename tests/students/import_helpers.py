"""Shared by the import tests: files written to disk and a snapshot of what the database holds."""

from __future__ import annotations

from pathlib import Path

from students.demo import UCI_CSV
from students.models import FeatureDefinition, ImportUpload, Student, StudentChange

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UCI_FILE = UCI_CSV
OULAD_EXCERPT = PROJECT_ROOT / "tests" / "data" / "oulad_studentInfo_excerpt.csv"

# Columns matching the fixture tenants' schema (units_approved 0-30, tuition boolean, gender f/m).
GOOD_CSV = (
    "student_id,name,email,units_approved,tuition_up_to_date,gender,outcome\r\n"
    "S001,Ann Lee,ann@example.edu,12,yes,f,Enrolled\r\n"
    "N100,\"Costa, Rui\",rui@example.edu,3,no,m,Dropout\r\n"
)


def write_file(tmp_path: Path, name: str, content: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def database_state(*institutions) -> tuple:
    """Everything an import could touch, for 'nothing was written' assertions."""
    state = []
    for institution in institutions:
        students = sorted(
            Student.objects.for_institution(institution).values_list(
                "external_id", "name", "email", "program", "cohort", "status", "outcome", "outcome_date", "features",
                "updated_at",
            )
        )
        state.append((
            students,
            StudentChange.objects.for_institution(institution).count(),
            sorted(FeatureDefinition.objects.for_institution(institution).values_list("key", "categories")),
        ))
    return tuple(state)


def student_snapshot(institution) -> dict:
    """What an import decides, without ids/timestamps: comparable across institutions."""
    return {
        row[0]: row[1:]
        for row in Student.objects.for_institution(institution).values_list(
            "external_id", "name", "email", "program", "cohort", "status", "outcome", "outcome_date", "features"
        )
    }


def feature_snapshot(institution) -> list:
    return sorted(
        FeatureDefinition.objects.for_institution(institution).values_list(
            "key", "label", "kind", "min_value", "max_value", "categories", "protected", "actionable"
        )
    )


def latest_upload(institution) -> ImportUpload:
    return ImportUpload.objects.for_institution(institution).order_by("-id").first()
