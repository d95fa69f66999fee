"""The auto-approval policy: which newly queued items the operator approves without a human
(``SPENDSENSE_AUTO_APPROVAL_POLICY``). Pure.

* ``off`` (the default): none; every item waits for an operator.
* ``education_checks_passed``: an item is approved at once when, and only when, all of these hold:

  1. it is an **education** item (never a partner offer: money is at stake);
  2. its guardrail results name **all four checks** — ``tone``, ``grounding``, ``disclosure``,
     ``length`` — and **every one passed** (a missing check counts as failed);
  3. it did **not fall back to the template** (``fell_back_to_template`` false: the writer's text was
     not refused; a refusal may mean a hostile input, so a person looks). Text the template writer wrote
     because it is the configured writer (no model) is not a fallback;
  4. it is **pending** (just queued, never decided).

Everything else stays pending for an operator. When the policy acts (in the ``recommendations.generated``
handler, in the same transaction that queues the item, and only with the user's current consent) the item
is approved by operator ``policy:<name>``, an audit entry says so, and ``recommendation.reviewed`` carries
``policy=<name>``.
"""

from __future__ import annotations

from typing import Literal

from spendsense_operator.domain.model import QueuedItem

AutoApprovalPolicy = Literal["off", "education_checks_passed"]
POLICIES: tuple[AutoApprovalPolicy, ...] = ("off", "education_checks_passed")
GUARDRAIL_CHECKS = ("tone", "grounding", "disclosure", "length")
POLICY_REASONS: dict[AutoApprovalPolicy, str] = {
    "off": "",
    "education_checks_passed": "auto-approved: an education item whose four guardrail checks passed, "
    "written without a template fallback",
}


def policy_operator(policy: AutoApprovalPolicy) -> str:
    """The operator id a policy's decisions are recorded under."""
    return f"policy:{policy}"


def auto_approves(policy: AutoApprovalPolicy, item: QueuedItem) -> bool:
    """Whether ``policy`` approves ``item`` without a human (see the module's docstring)."""
    if policy == "off":
        return False
    if policy == "education_checks_passed":
        return (
            item.kind == "education"
            and all(item.guardrails.get(check) is True for check in GUARDRAIL_CHECKS)
            and not item.fell_back_to_template
            and item.status == "pending"
        )
    raise ValueError(f"unknown auto-approval policy {policy!r} (known: {', '.join(POLICIES)})")
