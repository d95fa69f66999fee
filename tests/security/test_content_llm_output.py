"""Finding 10 of the security review: what an LLM writes could still mislead.

With a chat-completions server answering every request with a hostile text, two kinds reached every
user: an amount written in words ("about fifty thousand dollars") and a link ("Visit http://… to repair
your score"). Now grounding reads numbers written in words, and no generated text may carry a link, an
e-mail address or a phone number that the catalog item itself does not have (``contacts`` check).

A real local HTTP server speaks the chat-completions protocol (the recommender's ``tests/llm_server.py``)
and answers with each hostile kind on top of an otherwise grounded rationale; each falls back to the
template, and the trace says which check stopped it and what it found. A link the catalog item itself
carries is allowed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spendsense_cli.synthetic import build_user
from spendsense_recommender.adapters.llm import LlmConfig, OpenAIWriter
from spendsense_recommender.domain import DISCLOSURE, UserFacts, plan
from spendsense_recommender.domain.writer import WriteRequest
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "content_support.py", "spendsense_content_support")
USER = UserFacts(annual_income=60_000, credit_score=720, products=frozenset({"checking", "credit_card"}))
ROOT = Path(__file__).resolve().parents[2]


def _llm_server() -> ModuleType:
    name = "recommender_llm_server"
    if name not in sys.modules:
        path = ROOT / "services" / "recommender" / "tests" / "llm_server.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


llm = _llm_server()


def hostile(extra: str) -> Callable[[dict[str, Any]], Any]:
    """A model that writes a grounded rationale and then adds ``extra``."""

    def script(body: dict[str, Any]) -> Any:
        return llm.answer(body, "A closer look at your numbers", f"{llm.grounded_rationale(body)} {extra}")

    return script


# kind → (what the model adds, the check that must stop it, what that check must report)
HOSTILE: dict[str, tuple[str, str, str]] = {
    "an amount in words": (
        "You could save about fifty thousand dollars.",
        "grounding",
        "fifty thousand dollars",
    ),
    "a percentage in words": ("That is twelve percent of your spending.", "grounding", "twelve percent"),
    "a link": ("More help is at score-repair.example.com/now.", "contacts", "score-repair.example.com/now."),
    "a URL": ("Visit http://score.example/fix to repair your score.", "contacts", "http://score.example/fix"),
    "an e-mail address": ("Questions go to help@score-fix.com.", "contacts", "help@score-fix.com"),
    "a phone number": ("Our advisors are at (800) 555-0199.", "contacts", "(800) 555-0199"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with llm.LlmServer() as running:
        yield running


@pytest.fixture(scope="module")
def request_() -> WriteRequest:
    user = next(
        u
        for u, label in (build_user(i, seed=5) for i in range(40))
        if label["persona"] == "subscription_heavy"
    )
    report, _ = support.analysis_of(user)
    requests = plan(report, USER).requests
    assert requests
    return requests[0]


async def write(server: Any, request: WriteRequest) -> Any:
    config = LlmConfig(api_key="test-key", model="local-test-model", base_url=server.base_url, max_retries=0)
    writer = OpenAIWriter(config)
    try:
        return await writer.write(request)
    finally:
        await writer.aclose()


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_a_hostile_answer_falls_back_to_the_template_and_the_trace_says_why(server, request_, kind):
    extra, check, found = HOSTILE[kind]
    server.reset(hostile(extra))
    written = await write(server, request_)

    assert server.received, "the model was asked"
    assert written.rationale == request_.rendered  # the template's text, checked
    assert written.disclosure == DISCLOSURE
    assert written.guardrails["passed"] is True
    assert extra not in written.rationale
    generator = written.generator
    assert generator["used"] == "template"
    fallback = generator["fallback"]
    assert fallback["reason"] == "guardrails"
    assert check in fallback["detail"].split(", "), fallback
    rejected = fallback["guardrails"]
    assert check in rejected["reasons"]
    if check == "grounding":
        assert found in rejected["grounding"]["unmatched"], rejected["grounding"]
    else:
        assert found in [c["text"] for c in rejected["contacts"]["found"]], rejected["contacts"]


async def test_a_link_the_catalog_item_itself_carries_may_be_repeated(server, request_):
    item_link = "annualcreditreport.com"
    request = dataclasses.replace(request_, body=f"{request_.body} Free credit reports: {item_link}.")
    server.reset(hostile(f"Free reports are at {item_link}."))
    written = await write(server, request)
    assert written.generator["used"] == "llm", written.generator
    assert item_link in written.rationale

    server.reset(hostile("Free reports are at creditreport-fix.com."))  # the same sentence, another site
    assert (await write(server, request)).generator["used"] == "template"
