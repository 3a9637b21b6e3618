"""The access log page (administrators): search the audit trail by who, student, date and kind of
read, and export what was found as CSV. Composed here because it shows students beside entries."""

from __future__ import annotations

import datetime
import zoneinfo

from django import forms
from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from audit.models import AccessAction
from audit.recording import AccessRecordedPageMixin
from audit.selectors import AccessLogQuery, access_entry_search
from institutions.models import ApiKey, Membership
from institutions.view_mixins import InstitutionPageMixin, int_param
from students.models import Student

from .views import csv_rows_stream

PAGE_SIZE = 50
MAX_PAGE = 200  # deeper than 10,000 entries: narrow the search (or export it)
EXPORT_CHUNK = 2000


class AccessLogSearchForm(forms.Form):
    who = forms.ChoiceField(required=False, label=_("Who"))
    student = forms.CharField(required=False, max_length=100, label=_("Student"),
                              help_text=_("External id, or #id for a student no longer on record"))
    date_from = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=_("To (inclusive)"),
                              widget=forms.DateInput(attrs={"type": "date"}))
    action = forms.ChoiceField(required=False, label=_("What"), choices=[("", _("Any read")), *AccessAction.choices])

    def __init__(self, *args, institution, **kwargs):
        super().__init__(*args, **kwargs)
        self.institution = institution
        members = Membership.objects.for_institution(institution).select_related("user").order_by("user__username")
        keys = ApiKey.objects.for_institution(institution).order_by("name")
        self.fields["who"].choices = [
            ("", _("Anyone")),
            (_("Members"), [(f"user:{m.user_id}", m.user.get_full_name() or m.user.username) for m in members]),
            (_("API keys"), [(f"key:{k.pk}", f"{k.name} ({k.display_prefix})") for k in keys]),
        ]

    def clean_student(self) -> int | None:
        text = self.cleaned_data["student"].strip()
        if not text:
            return None
        if text.startswith("#"):
            number = text[1:]
            if number.isdigit() and 0 < int(number) < 2**63:
                return int(number)
            raise forms.ValidationError(_("After # comes a student's number, e.g. #1234."))
        found = Student.objects.for_institution(self.institution).filter(external_id=text).values_list("pk", flat=True)
        student_id = next(iter(found), None)
        if student_id is None:
            raise forms.ValidationError(_("No student with external id %(id)s in %(name)s.") % {
                "id": repr(text), "name": self.institution.name})
        return student_id

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def query(self) -> AccessLogQuery:
        data = self.cleaned_data
        kind, _separator, number = (data.get("who") or "").partition(":")
        zone = zoneinfo.ZoneInfo(self.institution.timezone)

        def start_of(day: datetime.date | None) -> datetime.datetime | None:
            return None if day is None else datetime.datetime.combine(day, datetime.time(), tzinfo=zone)

        return AccessLogQuery(
            user_id=int(number) if kind == "user" else None, api_key_id=int(number) if kind == "key" else None,
            student_id=data.get("student"), since=start_of(data.get("date_from")),
            before=start_of(data["date_to"] + datetime.timedelta(days=1)) if data.get("date_to") else None,
            action=data.get("action") or "",
        )


def _students_by_id(institution, ids) -> dict[int, Student]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {s.pk: s for s in Student.objects.for_institution(institution).filter(pk__in=ids).only("pk", "name",
                                                                                                   "external_id")}


class AccessLogView(AccessRecordedPageMixin, InstitutionPageMixin, TemplateView):
    """``?who=&student=&date_from=&date_to=&action=``; ``&export=csv`` for every matching entry."""

    template_name = "workspace/access_log.html"
    required_capability = "view_access_log"

    def get(self, request, *args, **kwargs):
        self.form = AccessLogSearchForm(request.GET or None, institution=self.institution)
        if self.form.is_bound and not self.form.is_valid():
            return self.render_to_response(self.get_context_data(entries=[], searched=False), status=400)
        self.search = self.form.query() if self.form.is_bound else AccessLogQuery()
        if request.GET.get("export") == "csv":
            return self.export_csv()
        return super().get(request, *args, **kwargs)

    def _exporting(self) -> bool:
        return self.request.GET.get("export") == "csv"

    def get_access_action(self) -> str:
        return AccessAction.ACCESS_LOG_EXPORT if self._exporting() else AccessAction.ACCESS_LOG_SEARCH

    def access_details(self, response) -> dict:
        filters = {key: value for key, value in self.request.GET.items()
                   if key in ("who", "date_from", "date_to", "action") and value}
        count = self._exported if self._exporting() else len(response.context_data["entries"])
        return {"filters": filters, "student_id": self.search.student_id, "result_count": count}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"] = self.form
        context["retention_days"] = settings.AUDIT_RETENTION_DAYS
        if "entries" in kwargs:
            return context
        page = max(1, min(int_param(self.request.GET.get("page")) or 1, MAX_PAGE))
        start = (page - 1) * PAGE_SIZE
        found = list(access_entry_search(institution=self.institution, query=self.search)[start:start + PAGE_SIZE + 1])
        entries = found[:PAGE_SIZE]
        students = _students_by_id(self.institution, (e.student_id for e in entries))
        query = self.request.GET.copy()
        query.pop("page", None)
        query.pop("export", None)
        context.update(
            entries=[(e, students.get(e.student_id), filter_text(e.filters)) for e in entries], page=page,
            has_next=len(found) > PAGE_SIZE and page < MAX_PAGE, query=query.urlencode(), searched=True,
        )
        return context

    def export_csv(self):
        entries = access_entry_search(institution=self.institution, query=self.search)
        self._exported = entries.count()

        def rows():
            yield ["when_utc", "who", "user_id", "api_key_id", "what", "student_id", "student_external_id",
                   "object_id", "filter", "rows", "address"]
            chunk = []
            for entry in entries.iterator(chunk_size=EXPORT_CHUNK):
                chunk.append(entry)
                if len(chunk) == EXPORT_CHUNK:
                    yield from _export_rows(self.institution, chunk)
                    chunk = []
            yield from _export_rows(self.institution, chunk)

        response = StreamingHttpResponse(csv_rows_stream(rows()), content_type="text/csv; charset=utf-8")
        stamp = timezone.localdate().isoformat()
        response["Content-Disposition"] = f'attachment; filename="{self.institution.slug}-{stamp}-access-log.csv"'
        response["Cache-Control"] = "no-store"
        return response


def _export_rows(institution, entries):
    students = _students_by_id(institution, (e.student_id for e in entries))
    for e in entries:
        student = students.get(e.student_id)
        yield [e.created_at.astimezone(datetime.UTC).isoformat(), e.actor_name, e.actor_user_id or "",
               e.api_key_id or "", e.get_action_display(), e.student_id or "", student.external_id if student else "",
               e.object_id or "", filter_text(e.filters), "" if e.result_count is None else e.result_count,
               e.ip_address or ""]


def filter_text(filters: dict) -> str:
    """A list's recorded filter as one line: ``band=high; page=2``."""
    return "; ".join(f"{key}={value}" for key, value in sorted(filters.items()))
