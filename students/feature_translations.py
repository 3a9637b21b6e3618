"""A feature's label and description in the other languages of the pages.

An institution writes, for each feature, a label and a description per language (``es``, ``pt``:
every language of ``settings.LANGUAGES`` but the default) besides its default ones; a reader
whose language has one sees it, anyone else the default (``FeatureDefinition.label_in``).

They are edited as flat fields (``label_es``, ``description_pt``...) on the schema page and
through the service, so each one is recorded in the feature's history like any other field; the
API reads and writes them as one object, ``translations``: ``{"es": {"label": ..., "description":
...}}``, turned into the flat fields by :func:`translation_fields_from_object`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

# Part -> longest text (as the default label's and the schema form's description's).
TRANSLATED_PARTS = {"label": 200, "description": 5000}


def translated_languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def language_name(code: str) -> str:
    return dict(settings.LANGUAGES).get(code, code)


TRANSLATION_FIELDS: tuple[str, ...] = tuple(
    f"{part}_{language}" for language in translated_languages() for part in TRANSLATED_PARTS
)


def translation_field(name: str) -> tuple[str, str] | None:
    """("label", "es") for ``label_es``; None for a field that is not a translation."""
    if name not in TRANSLATION_FIELDS:
        return None
    part, _sep, language = name.rpartition("_")
    return part, language


def translation_value(translations: Mapping[str, Any] | None, name: str) -> str:
    part, language = translation_field(name)
    return str(((translations or {}).get(language) or {}).get(part) or "")


def translations_with(translations: Mapping[str, Any] | None, values: Mapping[str, str]) -> dict[str, dict]:
    """A copy of ``translations`` with the flat ``values`` set (a blank one removed)."""
    result = {language: dict(parts) for language, parts in (translations or {}).items()}
    for name, text in values.items():
        part, language = translation_field(name)
        entry = result.setdefault(language, {})
        if text:
            entry[part] = text
        else:
            entry.pop(part, None)
        if not entry:
            del result[language]
    return result


def clean_translation_texts(values: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(stripped texts, errors per field) for flat translation fields."""
    cleaned, errors = {}, {}
    for name, value in values.items():
        part, _language = translation_field(name)
        if value is not None and not isinstance(value, str):
            errors[name] = ["must be text"]
            continue
        text = (value or "").strip()
        if len(text) > TRANSLATED_PARTS[part]:
            errors[name] = [f"must be at most {TRANSLATED_PARTS[part]} characters"]
            continue
        cleaned[name] = text
    return cleaned, errors


def translation_fields_from_object(value: Any) -> tuple[dict[str, Any], list[str]]:
    """The API's ``translations`` object as flat fields, and what is wrong with its shape."""
    if not isinstance(value, dict):
        return {}, ['must be an object such as {"es": {"label": "...", "description": "..."}}']
    fields, errors = {}, []
    languages = translated_languages()
    for language, parts in value.items():
        if language not in languages:
            errors.append(f"{language!r} is not a language of the pages besides the default: "
                          f"use {', '.join(languages)}")
            continue
        if not isinstance(parts, dict) or set(parts) - set(TRANSLATED_PARTS):
            errors.append(f"{language}: must be an object with only {' and '.join(TRANSLATED_PARTS)}")
            continue
        for part, text in parts.items():
            fields[f"{part}_{language}"] = text
    return fields, errors


def translations_object(translations: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Every translated language with both parts (blank where none is given), for the API."""
    return {language: {part: translation_value(translations, f"{part}_{language}") for part in TRANSLATED_PARTS}
            for language in translated_languages()}
