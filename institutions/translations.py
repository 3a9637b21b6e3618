"""The translation catalogues under ``locale/`` (docs/translating.md), with no GNU gettext.

Django's ``makemessages`` and ``compilemessages`` need ``xgettext`` and ``msgfmt``, which a fresh
machine may lack. Here the marked strings are found by Django itself (templates are compiled by the
template engine and their ``{% translate %}``/``{% blocktranslate %}`` nodes read, so a message's id
is exactly the one looked up when the page renders) and by the ``ast`` of the Python sources
(``gettext``, ``gettext_lazy``, ``_``, ``pgettext``, ``ngettext`` and their lazy forms with literal
arguments). polib (pure Python) reads, updates and compiles the ``.po`` files.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

SKIP_DIRS = {".venv", "node_modules", "migrations", "tests", "var", "staticfiles", "locale", "__pycache__", ".git",
             "bench", "deploy", "ml"}
PLURAL_FORMS = {"es": "nplurals=2; plural=(n != 1);", "pt": "nplurals=2; plural=(n != 1);"}
TRANSLATION_CALLS = {
    "gettext": "s", "gettext_lazy": "s", "_": "s", "gettext_noop": "s",
    "pgettext": "cs", "pgettext_lazy": "cs",
    "ngettext": "sp", "ngettext_lazy": "sp", "npgettext": "csp", "npgettext_lazy": "csp",
}


@dataclass(frozen=True)
class Message:
    msgid: str
    plural: str = ""
    context: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.context, self.msgid)


def base_dir() -> Path:
    return Path(settings.BASE_DIR)


def locale_dir() -> Path:
    return Path(settings.LOCALE_PATHS[0])


def target_languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES if code != "en"]


def _source_files(suffixes: tuple[str, ...]) -> list[Path]:
    root = base_dir()
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in suffixes or not path.is_file():
            continue
        if SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            continue
        found.append(path)
    return found


def template_messages(source: str) -> list[Message]:
    """The messages a template looks up, read from its compiled nodes."""
    from django.template import engines
    from django.templatetags.i18n import BlockTranslateNode, TranslateNode

    engine = engines["django"].engine
    nodelist = engine.from_string(source).nodelist
    messages: list[Message] = []
    for node in nodelist.get_nodes_by_type(TranslateNode):
        var = node.filter_expression.var
        literal = getattr(var, "literal", None)
        if node.noop or not isinstance(literal, str):
            continue
        context = node.message_context.var if node.message_context is not None else ""
        messages.append(Message(msgid=literal.replace("%", "%%"), context=str(context or "")))
    for node in nodelist.get_nodes_by_type(BlockTranslateNode):
        singular, _vars = node.render_token_list(node.singular)
        plural = node.render_token_list(node.plural)[0] if node.plural and node.countervar else ""
        context = node.message_context.var if node.message_context is not None else ""
        messages.append(Message(msgid=singular, plural=plural, context=str(context or "")))
    return messages


def python_messages(source: str) -> list[Message]:
    """The messages of a Python module's translation calls with literal arguments."""
    if "django.utils.translation" not in source:
        return []
    messages = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        shape = TRANSLATION_CALLS.get(name)
        if shape is None or len(node.args) < len(shape):
            continue
        values = [arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                  for arg in node.args[: len(shape)]]
        if None in values:
            continue
        parts = dict(zip(shape, values, strict=True))
        messages.append(Message(msgid=parts["s"], plural=parts.get("p", ""), context=parts.get("c", "")))
    return messages


def extract_messages() -> dict[tuple[str, str], Message]:
    """Every marked string of the templates and the apps' Python, by (context, msgid)."""
    found: dict[tuple[str, str], Message] = {}
    for path in _source_files((".html", ".txt")):
        if "templates" not in path.relative_to(base_dir()).parts:
            continue
        source = path.read_text(encoding="utf-8")
        if "{% load" not in source or "i18n" not in source:
            continue
        for message in template_messages(source):
            found.setdefault(message.key, message)
    for path in _source_files((".py",)):
        for message in python_messages(path.read_text(encoding="utf-8")):
            found.setdefault(message.key, message)
    return found


def catalogue_path(language: str, domain: str = "django") -> Path:
    return locale_dir() / language / "LC_MESSAGES" / f"{domain}.po"


def catalogue_update(language: str) -> tuple[int, int]:
    """Add the marked strings missing from the language's catalogue (untranslated, for a translator
    to fill in) and drop the entries no longer marked. Returns (added, removed)."""
    import polib

    path = catalogue_path(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    po = polib.pofile(str(path)) if path.exists() else polib.POFile()
    po.metadata.setdefault("Content-Type", "text/plain; charset=UTF-8")
    po.metadata.setdefault("Content-Transfer-Encoding", "8bit")
    po.metadata["Language"] = language
    po.metadata["Plural-Forms"] = PLURAL_FORMS.get(language, "nplurals=2; plural=(n != 1);")
    wanted = extract_messages()
    present = {(entry.msgctxt or "", entry.msgid): entry for entry in po}
    added = removed = 0
    for key, message in sorted(wanted.items()):
        if key in present:
            continue
        entry = polib.POEntry(msgid=message.msgid, msgctxt=message.context or None)
        if message.plural:
            entry.msgid_plural = message.plural
            entry.msgstr_plural = {0: "", 1: ""}
        else:
            entry.msgstr = ""
        po.append(entry)
        added += 1
    for key, entry in present.items():
        if key not in wanted:
            po.remove(entry)
            removed += 1
    po.sort(key=lambda entry: ((entry.msgctxt or ""), entry.msgid))
    po.save(str(path))
    return added, removed


def catalogues_compile() -> list[Path]:
    """Compile every ``locale/*/LC_MESSAGES/*.po`` to its ``.mo`` (which is not committed)."""
    import polib

    written = []
    for po_path in sorted(locale_dir().glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        written.append(mo_path)
    return written
