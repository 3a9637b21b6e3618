"""Django's PostgreSQL backend with a connection health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` on, Django checks a persistent connection at the start of every
request by sending ``SELECT 1``: a round trip to the server per request, which for the API's
reads cost as much as one of their own queries. A connection that sits idle between requests
receives nothing from the server unless the server ends the session (a restart, an idle or
administrator termination): it then sends its final message and closes the socket, which makes
the socket readable. So the check here polls the socket without waiting. Nothing to read means
the session is as the last request left it; anything to read (or a closed client side) falls
back to Django's ``SELECT 1``, which fails on a closed session and makes Django reconnect.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        if not hasattr(select, "poll"):
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            events = poller.poll(0)
        except (OSError, ValueError):
            return super().is_usable()
        return True if not events else super().is_usable()
