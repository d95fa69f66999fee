"""The recommender's pure core: catalog, selection, guardrails, text writers, decision traces.

No database, no bus, no network (the OpenAI-backed writer is in ``adapters.llm``). The service calls:

* ``user_facts_from_report(report, accounts, credit_score)`` → ``UserFacts`` for eligibility;
* ``await build_recommendations(report, user_facts, rule_set_version=..., upload_id=..., as_of=...,
  writer=..., dismissed=..., previous_hash=...)`` → ``RecommendationSet`` (items with sealed traces);
* ``verify_chain(traces, previous_hash=None)`` and ``replay(trace)`` for the audit endpoints;
* ``decide_review(target, review, consented=..., at=...)`` when a reviewer decides on a recommendation:
  the status, the text shown (an override, checked again) and the action chained onto its trace.
"""

from spendsense_shared.guardrails.checks import GuardrailReport, check_text
from spendsense_shared.guardrails.grounding import check_grounding
from spendsense_shared.guardrails.tone import check_tone

from .catalog import Catalog, CatalogError, EducationItem, Offer, load_catalog, parse_catalog
from .eligibility import (
    AccountInfo,
    EligibilityCheck,
    UserFacts,
    estimate_annual_income,
    products_from_accounts,
    user_facts_from_report,
)
from .recommend import Plan, Recommendation, RecommendationSet, build_recommendations, plan, recommendation_id
from .replay import ReplayResult, replay
from .review import Override, Review, ReviewOutcome, decide_review
from .selection import SelectionDecision, SelectionInput, decide
from .snapshot import UserSnapshot, parse_report
from .trace import (
    GENESIS,
    ChainVerification,
    append_operator_action,
    content_hash,
    seal,
    seal_chain,
    verify_chain,
)
from .vocabulary import DISCLOSURE, PERSONA_IDS, SELECTION_VERSION
from .writer import TemplateWriter, Writer, WriteRequest, WrittenText

__all__ = [
    "DISCLOSURE",
    "GENESIS",
    "PERSONA_IDS",
    "SELECTION_VERSION",
    "AccountInfo",
    "Catalog",
    "CatalogError",
    "ChainVerification",
    "EducationItem",
    "EligibilityCheck",
    "GuardrailReport",
    "Offer",
    "Override",
    "Plan",
    "Recommendation",
    "RecommendationSet",
    "ReplayResult",
    "Review",
    "ReviewOutcome",
    "SelectionDecision",
    "SelectionInput",
    "TemplateWriter",
    "UserFacts",
    "UserSnapshot",
    "WriteRequest",
    "Writer",
    "WrittenText",
    "append_operator_action",
    "build_recommendations",
    "check_grounding",
    "check_text",
    "check_tone",
    "content_hash",
    "decide",
    "decide_review",
    "estimate_annual_income",
    "load_catalog",
    "parse_catalog",
    "parse_report",
    "plan",
    "products_from_accounts",
    "recommendation_id",
    "replay",
    "seal",
    "seal_chain",
    "user_facts_from_report",
    "verify_chain",
]
