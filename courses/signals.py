"""Signals courses sends; higher apps connect receivers (courses never imports them).

``survey_marks_saved(sender, institution, invitation, created, updated, removed)``: an instructor
saved their survey roster. ``created`` and ``updated`` are lists of :class:`courses.models.SurveyMark`
(concerns and kudos), ``removed`` the ids of marks the instructor took back. Sent inside the
transaction that saved them, inside the institution's scope, so a receiver's writes (the alerts
interventions raises) commit or roll back with the marks.
"""

import django.dispatch

survey_marks_saved = django.dispatch.Signal()
