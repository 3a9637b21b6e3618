"""The site's navigation, grouped by job, and each page's title.

One place says which pages a member reaches from the menu (by capability, as the pages
themselves check it) and what each page is called in the browser's tab and history, so that
every page has a title of its own (WCAG 2.4.2) and the menu fits one line at 1366 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: str
    capability: str
    # Other pages that belong to this item (a student's profile belongs to "Students").
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class NavGroup:
    label: str
    # Sections of a dropdown: (heading or "", items). A group of one item is shown as a plain link.
    sections: tuple[tuple[str, tuple[NavItem, ...]], ...]
    key: str = ""


@dataclass
class ShownItem:
    url: str
    label: str
    current: bool


@dataclass
class ShownGroup:
    label: str
    key: str
    sections: list[tuple[str, list[ShownItem]]] = field(default_factory=list)

    @property
    def items(self) -> list[ShownItem]:
        return [item for _heading, items in self.sections for item in items]

    @property
    def current(self) -> bool:
        return any(item.current for item in self.items)


NAVIGATION: tuple[NavGroup, ...] = (
    NavGroup(_("Work"), key="work", sections=(("", (
        NavItem("dashboard", _("Dashboard"), "view_aggregates", also=("institution-home",)),
        NavItem("caseload", _("My caseload"), "view_students"),
        NavItem("flagged-list", _("Flagged students"), "view_students"),
        NavItem("intervention-list", _("Interventions"), "view_students", also=("intervention-edit",)),
        NavItem("alert-list", _("Alerts"), "edit_interventions",
                also=("alert-detail", "alert-unassigned", "alert-all", "office-alerts")),
        NavItem("applicant-score", _("Score an applicant"), "score_applicants"),
    )),)),
    NavGroup(_("Students"), key="students", sections=(("", (
        NavItem("student-list", _("Students"), "view_students",
                also=("student-detail", "student-export", "student-erase")),
    )),)),
    NavGroup(_("Insights"), key="insights", sections=(("", (
        NavItem("effectiveness", _("Did it help? (effectiveness)"), "view_aggregates"),
        NavItem("model-list", _("Risk model"), "view_aggregates", also=("model-detail", "model-decision")),
        NavItem("feature-list", _("Data schema"), "view_aggregates"),
    )),)),
    NavGroup(_("Administration"), key="admin", sections=(
        (_("Data"), (
            NavItem("import-upload", _("Import data"), "manage_data", also=("import-detail", "import-mapping")),
            NavItem("feature-schema", _("Edit the data schema"), "manage_data", also=("feature-edit",)),
            NavItem("survey-list", _("Progress surveys"), "manage_data",
                    also=("survey-open", "survey-detail", "concern-types")),
            NavItem("prediction-job-list", _("Jobs"), "manage_models"),
        )),
        (_("People and access"), (
            NavItem("member-list", _("Members"), "manage_users", also=("member-update",)),
            NavItem("invitation-list", _("Invitations"), "manage_users"),
            NavItem("access-settings", _("Who sees which students"), "manage_users"),
            NavItem("security-policy", _("Sign-in rules"), "manage_users"),
            NavItem("sso-provider-list", _("Single sign-on"), "manage_users",
                    also=("sso-provider-new", "sso-provider-edit")),
        )),
        (_("Integrations"), (
            NavItem("api-key-list", _("API keys"), "manage_keys"),
            NavItem("webhook-list", _("Webhooks"), "manage_webhooks", also=("webhook-detail",)),
        )),
        (_("Settings and records"), (
            NavItem("prediction-settings", _("Model settings"), "manage_models"),
            NavItem("intervention-types", _("Intervention types"), "configure_interventions"),
            NavItem("alert-rules", _("Offices & routing"), "configure_interventions",
                    also=("office-list", "office-detail")),
            NavItem("retention", _("Retention"), "manage_data"),
            NavItem("erasure-list", _("Erasures"), "manage_data"),
            NavItem("access-log", _("Access log"), "view_access_log"),
        )),
    )),
)

# The title of each page, by URL name; "{institution}" is added by the layout. Pages whose
# template sets its own title block (webhooks, SSO set-up...) keep theirs.
PAGE_TITLES: dict[str, object] = {
    "home": _("Your institutions"),
    "institution-home": _("Dashboard"),
    "dashboard": _("Dashboard"),
    "caseload": _("My caseload"),
    "flagged-list": _("Flagged students"),
    "intervention-list": _("Interventions"),
    "intervention-edit": _("Intervention"),
    "intervention-types": _("Intervention types"),
    "alert-list": _("My alerts"),
    "alert-unassigned": _("Unassigned alerts"),
    "alert-all": _("All alerts"),
    "alert-detail": _("Alert"),
    "office-alerts": _("Office alerts"),
    "office-list": _("Offices"),
    "office-detail": _("Office"),
    "alert-rules": _("Alert routing"),
    "access-settings": _("Who sees which students"),
    "effectiveness": _("Did it help? Intervention effectiveness"),
    "student-list": _("Students"),
    "student-detail": _("Student profile"),
    "student-export": _("Everything held about a student"),
    "student-erase": _("Erase a student"),
    "feature-list": _("Data schema"),
    "feature-schema": _("Edit the data schema"),
    "feature-edit": _("Edit a feature"),
    "import-upload": _("Import data"),
    "import-detail": _("Import"),
    "import-mapping": _("Import: column mapping"),
    "model-list": _("Risk model"),
    "model-detail": _("Model version"),
    "prediction-settings": _("Model settings"),
    "prediction-job-list": _("Jobs"),
    "member-list": _("Members"),
    "member-update": _("Member"),
    "survey-list": _("Progress surveys"),
    "survey-open": _("Open a progress survey"),
    "survey-detail": _("Progress survey"),
    "concern-types": _("Concern types"),
    "retention": _("Retention"),
    "erasure-list": _("Erasures"),
    "access-log": _("Access log"),
    "applicant-score": _("Score an applicant"),
    "notification-list": _("Notifications"),
    "notification-preferences": _("Notification settings"),
    "password_change": _("Change your password"),
    "password_change_done": _("Password changed"),
    # These templates set their own title; named here too, so the menu's test sees every entry.
    "webhook-list": _("Webhooks"),
    "sso-provider-list": _("Single sign-on"),
    "invitation-list": _("Invitations"),
    "api-key-list": _("API keys"),
    "security-policy": _("Sign-in rules"),
}


def page_title(url_name: str | None, *, context=None) -> str:
    """The page's own part of the title (before the institution and the site's name)."""
    title = PAGE_TITLES.get(url_name or "", "")
    if context is None:
        return title
    student = context.get("student")
    if url_name in ("student-detail", "student-export", "student-erase") and student is not None:
        return f"{student.external_id} · {title}"
    version = context.get("version") or context.get("model_version")
    if url_name == "model-detail" and getattr(version, "number", None) is not None:
        return f"{title} {version.number}"
    return title


def navigation_for(*, membership, institution_slug: str, url_name: str | None) -> list[ShownGroup]:
    """The groups and items ``membership`` may open, the current page's item marked."""
    shown = []
    for group in NAVIGATION:
        out = ShownGroup(label=group.label, key=group.key)
        for heading, items in group.sections:
            visible = []
            for item in items:
                if membership is None or not membership.can(item.capability):
                    continue
                try:
                    url = reverse(item.url_name, args=[institution_slug])
                except NoReverseMatch:  # a page of an app not installed
                    continue
                visible.append(ShownItem(url=url, label=item.label,
                                         current=url_name == item.url_name or url_name in item.also))
            if visible:
                out.sections.append((heading, visible))
        if out.sections:
            shown.append(out)
    return shown
