"""``python -m streamq.cli``: what ``streamq run`` spawns for its server and workers."""

from __future__ import annotations

import sys

from streamq.cli._main import main

sys.exit(main())
