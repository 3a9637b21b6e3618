"""Signals interventions sends; higher apps connect receivers (interventions never imports them).

Both are sent after the transaction that made the change commits (``transaction.on_commit``),
inside the institution's scope:

``alert_assigned(sender, institution, alert, users, event)``: ``alert`` was routed (``event.kind``
``routed``) or referred (``referred``) to ``users`` (the assigned person, or every member of the
assigned office). The workspace notifies them.

``alert_closed(sender, institution, alert, event)``: ``alert`` was closed with an outcome. The
workspace tells the member who raised it (an instructor who raised it through a survey is
emailed by interventions itself).
"""

import django.dispatch

alert_assigned = django.dispatch.Signal()
alert_closed = django.dispatch.Signal()
