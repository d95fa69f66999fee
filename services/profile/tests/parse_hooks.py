"""Stand-ins for the upload parser that misbehave on purpose, for the tests of the parsing process's
budgets. They live in an importable module (``services/profile/tests`` is on the path) because the
parsing process imports the parser it is given by name."""

from __future__ import annotations

import time
from typing import Any


def spin(source: Any, **options: Any) -> Any:
    """Burns CPU for ever (a parser stuck on a pathological file)."""
    n = 0
    while True:
        n += 1


def sleep_forever(source: Any, **options: Any) -> Any:
    """Waits for ever without using CPU (a parse that stalls)."""
    while True:
        time.sleep(60)
