"""Events for tests, built as their producers build them."""

from __future__ import annotations

from collections.abc import Sequence

from spendsense_shared.messaging.catalog import PersonaAssigned, PersonaAssignment, PersonasAssigned


def assigned_together(each: Sequence[PersonaAssigned]) -> PersonasAssigned:
    """Per-user assignments of one upload (or re-score) and rule set as the one ``personas.assigned``
    the features service announces for them."""
    [(upload_id, version, reason)] = {(a.upload_id, a.rule_set_version, a.reason) for a in each}
    fields = PersonaAssignment.model_fields
    return PersonasAssigned(
        upload_id=upload_id,
        rule_set_version=version,
        reason=reason,
        assignments=[PersonaAssignment(**{name: getattr(a, name) for name in fields}) for a in each],
    )
