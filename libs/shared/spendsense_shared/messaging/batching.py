"""Many users' entries in as few events as the limits allow (``personas.assigned``,
``recommendations.batch_generated``): every publish costs the broker the same however small the event."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel

Entry = TypeVar("Entry", bound=BaseModel)


def event_batches(entries: Sequence[Entry], max_count: int, max_bytes: int) -> list[list[Entry]]:
    """``entries`` in order, cut wherever the next one would make an event hold more than ``max_count``
    of them or more than ``max_bytes`` of them serialized."""
    batches: list[list[Entry]] = []
    size = 0
    for entry in entries:
        # measured as the relay sends it (json.dumps escapes non-ASCII: the larger count)
        weight = len(json.dumps(entry.model_dump(mode="json")))
        full = not batches or len(batches[-1]) >= max_count
        if full or size + weight > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += weight
    return batches
