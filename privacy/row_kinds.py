"""The kinds of rows an erasure deletes or cleans, in the reader's language.

An erasure counts rows per kind under the models' plural names (``erasure.py``), and its record keeps
those English keys; the pages show each one through :func:`row_kind_label`, so a record written
before reads in Spanish or Portuguese too. A kind not listed here (a model added later) shows as
counted."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

ROW_KINDS = {
    "academic sessions": _("academic sessions"),
    "access entrys": _("access log entries"),
    "access log entries (unlinked from the student)": _("access log entries (unlinked from the student)"),
    "activity events": _("activity events"),
    "alert events": _("alert events"),
    "alert rules": _("alert rules"),
    "alerts": _("alerts"),
    "api keys": _("API keys"),
    "concern types": _("concern types"),
    "courses": _("courses"),
    "enrolments": _("enrolments"),
    "erasure records": _("erasure records"),
    "feature definition changes": _("feature definition changes"),
    "feature definitions": _("feature definitions"),
    "feature stage changes": _("feature stage changes"),
    "feature stages": _("feature stages"),
    "flags": _("flags"),
    "identity providers": _("identity providers"),
    "import change lists (CSV files)": _("import change lists (CSV files)"),
    "import mappings": _("import mappings"),
    "import upload sessions": _("import upload sessions"),
    "import uploads": _("import uploads"),
    "instructors": _("instructors"),
    "intervention types": _("intervention types"),
    "interventions": _("interventions"),
    "invitations": _("invitations"),
    "jobs": _("jobs"),
    "latest predictions": _("latest predictions"),
    "memberships": _("memberships"),
    "model versions": _("model versions"),
    "notification preferences": _("notification preferences"),
    "notifications": _("notifications"),
    "office members": _("office members"),
    "offices": _("offices"),
    "prediction settings": _("prediction settings"),
    "predictions": _("predictions"),
    "progress surveys": _("progress surveys"),
    "rescore chunks": _("rescore chunks"),
    "retention policies": _("retention policies"),
    "risk feedback": _("risk feedback"),
    "risk snapshots": _("risk snapshots"),
    "risk snapshots (the student's id)": _("risk snapshots (the student's id)"),
    "roster imports": _("roster imports"),
    "section terms": _("section terms"),
    "sections": _("sections"),
    "security policys": _("sign-in rules"),
    "sso identitys": _("single sign-on identities"),
    "staff admin log entries": _("staff admin log entries"),
    "student access grants": _("student access grants"),
    "student changes": _("student data changes"),
    "students": _("students"),
    "survey invitations": _("survey invitations"),
    "survey marks": _("survey marks"),
    "teaching assignments": _("teaching assignments"),
    "webhook deliveries about the student": _("webhook deliveries about the student"),
    "webhook deliverys": _("webhook deliveries"),
    "webhook endpoints": _("webhook endpoints"),
}


def row_kind_label(kind: str) -> str:
    """``kind`` (as counted and stored) in the active language; unknown kinds as they are."""
    label = ROW_KINDS.get(kind)
    return str(label) if label is not None else kind
