"""The bundled UCI data as an institution's rows and feature schema.

The demo institutions are built from it by the ``demo`` app (``python manage.py build_demo``),
which sits above every app it fills; this module only reads the file and makes the schema.
"""

from __future__ import annotations

import csv
from pathlib import Path

from institutions.models import Institution

from .models import FeatureDefinition
from .stages import feature_stage_list
from .uci_schema import UCI_COLUMNS, uci_translations

UCI_CSV = Path(__file__).resolve().parent / "demo_data" / "uci_dropout.csv"


def read_uci_rows(path: Path = UCI_CSV) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        header = [name.strip() for name in next(reader)]
        return [dict(zip(header, row, strict=True)) for row in reader]


def _feature_value(kind: str, raw: str) -> float | str | bool:
    if kind == "numeric":
        return float(raw)
    if kind == "boolean":
        return raw.strip() == "1"
    return raw.strip()


def _create_schema(institution: Institution, rows: list[dict[str, str]]) -> None:
    definitions = []
    stages = {stage.key: stage for stage in feature_stage_list(institution=institution)}
    for position, column in enumerate(UCI_COLUMNS):
        categories = []
        if column.kind == "categorical":
            seen = sorted({row[column.header].strip() for row in rows}, key=int)
            categories = [{"value": code, "label": column.code_labels.get(code, f"Code {code}")} for code in seen]
        definitions.append(FeatureDefinition(
            institution=institution, key=column.key, label=column.label, kind=column.kind,
            min_value=column.min_value, max_value=column.max_value, categories=categories, unit=column.unit,
            protected=column.protected, actionable=column.actionable, position=position,
            translations=uci_translations(column.key),
            known_from=stages[column.known_from],
        ))
    FeatureDefinition.objects.for_institution(institution).bulk_create(definitions)
