"""The application on top of streamq: wallet analytics and Polymarket monitoring.

The domain layer lives here and needs no broker: providers (``processors.providers``), the
SQLite store (``processors.store``), the analyses (``processors.analysis``), the domain services
that chain them (``processors.services``) and the plans' queue/job settings as plain data
(``processors.config``). Job handlers and HTTP routes are wired onto it separately.
"""

from __future__ import annotations
