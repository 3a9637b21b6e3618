"""The site's navigation, grouped by job, and each page's title.

One place says which pages a member reaches from the menu (by capability, as the pages
themselves check it) and what each page is called in the browser's tab and history, so that
every page has a title of its own (WCAG 2.4.2) and the menu fits one line at 1366 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse


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
    NavGroup("Work", key="work", sections=(("", (
        NavItem("dashboard", "Dashboard", "view_aggregates", also=("institution-home",)),
        NavItem("caseload", "My caseload", "view_students"),
        NavItem("flagged-list", "Flagged students", "view_students"),
        NavItem("intervention-list", "Interventions", "view_students", also=("intervention-edit",)),
        NavItem("alert-list", "Alerts", "edit_interventions",
                also=("alert-detail", "alert-unassigned", "alert-all", "office-alerts")),
    )),)),
    NavGroup("Students", key="students", sections=(("", (
        NavItem("student-list", "Students", "view_students",
                also=("student-detail", "student-export", "student-erase")),
    )),)),
    NavGroup("Insights", key="insights", sections=(("", (
        NavItem("effectiveness", "Did it help? (effectiveness)", "view_aggregates"),
        NavItem("model-list", "Risk model", "view_aggregates", also=("model-detail", "model-decision")),
        NavItem("feature-list", "Data schema", "view_aggregates"),
    )),)),
    NavGroup("Administration", key="admin", sections=(
        ("Data", (
            NavItem("import-upload", "Import data", "manage_data", also=("import-detail", "import-mapping")),
            NavItem("feature-schema", "Edit the data schema", "manage_data", also=("feature-edit",)),
            NavItem("survey-list", "Progress surveys", "manage_data",
                    also=("survey-open", "survey-detail", "concern-types")),
            NavItem("prediction-job-list", "Jobs", "manage_models"),
        )),
        ("People and access", (
            NavItem("member-list", "Members", "manage_users", also=("member-update",)),
            NavItem("invitation-list", "Invitations", "manage_users"),
            NavItem("access-settings", "Who sees which students", "manage_users"),
            NavItem("security-policy", "Sign-in rules", "manage_users"),
            NavItem("sso-provider-list", "Single sign-on", "manage_users",
                    also=("sso-provider-new", "sso-provider-edit")),
        )),
        ("Integrations", (
            NavItem("api-key-list", "API keys", "manage_keys"),
            NavItem("webhook-list", "Webhooks", "manage_webhooks", also=("webhook-detail",)),
        )),
        ("Settings and records", (
            NavItem("prediction-settings", "Model settings", "manage_models"),
            NavItem("intervention-types", "Intervention types", "configure_interventions"),
            NavItem("alert-rules", "Offices & routing", "configure_interventions",
                    also=("office-list", "office-detail")),
            NavItem("retention", "Retention", "manage_data"),
            NavItem("erasure-list", "Erasures", "manage_data"),
            NavItem("access-log", "Access log", "view_access_log"),
        )),
    )),
)

# The title of each page, by URL name; "{institution}" is added by the layout. Pages whose
# template sets its own title block (webhooks, SSO set-up...) keep theirs.
PAGE_TITLES: dict[str, str] = {
    "home": "Your institutions",
    "institution-home": "Dashboard",
    "dashboard": "Dashboard",
    "caseload": "My caseload",
    "flagged-list": "Flagged students",
    "intervention-list": "Interventions",
    "intervention-edit": "Intervention",
    "intervention-types": "Intervention types",
    "alert-list": "My alerts",
    "alert-unassigned": "Unassigned alerts",
    "alert-all": "All alerts",
    "alert-detail": "Alert",
    "office-alerts": "Office alerts",
    "office-list": "Offices",
    "office-detail": "Office",
    "alert-rules": "Alert routing",
    "access-settings": "Who sees which students",
    "effectiveness": "Did it help? Intervention effectiveness",
    "student-list": "Students",
    "student-detail": "Student profile",
    "student-export": "Everything held about a student",
    "student-erase": "Erase a student",
    "feature-list": "Data schema",
    "feature-schema": "Edit the data schema",
    "feature-edit": "Edit a feature",
    "import-upload": "Import data",
    "import-detail": "Import",
    "import-mapping": "Import: column mapping",
    "model-list": "Risk model",
    "model-detail": "Model version",
    "prediction-settings": "Model settings",
    "prediction-job-list": "Jobs",
    "member-list": "Members",
    "member-update": "Member",
    "survey-list": "Progress surveys",
    "survey-open": "Open a progress survey",
    "survey-detail": "Progress survey",
    "concern-types": "Concern types",
    "retention": "Retention",
    "erasure-list": "Erasures",
    "access-log": "Access log",
    "notification-list": "Notifications",
    "notification-preferences": "Notification settings",
    "password_change": "Change your password",
    "password_change_done": "Password changed",
    # These templates set their own title; named here too, so the menu's test sees every entry.
    "webhook-list": "Webhooks",
    "sso-provider-list": "Single sign-on",
    "invitation-list": "Invitations",
    "api-key-list": "API keys",
    "security-policy": "Sign-in rules",
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
