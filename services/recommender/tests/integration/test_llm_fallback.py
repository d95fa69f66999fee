"""The fallback model, against the real local chat-completions server: when the primary model fails or
times out, the fallback model gets one try inside the same total deadline, then the template is used;
the trace says which model wrote each text and what every try came to.

The server answers per model (the request's ``model`` field), so one server plays both models.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spendsense_recommender.adapters.llm import LlmConfig, OpenAIWriter
from spendsense_recommender.domain import build_recommendations
from spendsense_recommender.domain.prompt import prompt_hash
from spendsense_recommender.domain.writer import WriteRequest, WrittenText
from spendsense_recommender.settings import RecommenderSettings
from spendsense_shared.testing.fakes import load_beside

llm = load_beside(str(Path(__file__).parents[1] / "llm_server.py"), "llm_server.py", "recommender_llm_server")
# The request and report builders of the writer's own tests (the same user, facts and catalog items).
writer_tests = load_beside(__file__, "test_llm_writer.py", "recommender_llm_writer_tests")

PRIMARY = "primary-model"
FALLBACK = "fallback-model"


def by_model(primary: Any, fallback: Any = llm.good) -> Any:
    """A script that answers as ``primary`` to the primary model and as ``fallback`` to the other."""

    def script(body: dict[str, Any]) -> Any:
        return (primary if body["model"] == PRIMARY else fallback)(body)

    return script


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with llm.LlmServer() as running:
        yield running


@pytest.fixture
def fresh(server: Any) -> Any:
    server.reset()
    return server


def writer_for(server: Any, **overrides: Any) -> OpenAIWriter:
    settings: dict[str, Any] = {
        "api_key": "test-key",
        "model": PRIMARY,
        "fallback_model": FALLBACK,
        "base_url": server.base_url,
        "timeout_s": 2.0,
        "total_timeout_s": 5.0,
        "max_retries": 1,
        "temperature": 0.3,
        "max_tokens": 350,
    }
    return OpenAIWriter(LlmConfig(**{**settings, **overrides}))


async def write(server: Any, request: WriteRequest, **overrides: Any) -> WrittenText:
    writer = writer_for(server, **overrides)
    try:
        return await writer.write(request)
    finally:
        await writer.aclose()


def models_asked(server: Any) -> list[str]:
    return [str(r.body["model"]) for r in server.received]


def assert_written_by_fallback(written: WrittenText, server: Any, primary_outcome: str) -> dict[str, Any]:
    generator = written.generator
    assert generator["used"] == "llm", generator
    assert generator["model"] == FALLBACK
    assert (generator["temperature"], generator["max_tokens"]) == (0.3, 350)
    fallback_request = server.received[-1].body
    assert generator["prompt_hash"] == prompt_hash(fallback_request["messages"], FALLBACK)
    assert fallback_request["model"] == FALLBACK
    assert (fallback_request["temperature"], fallback_request["max_completion_tokens"]) == (0.3, 350)
    assert written.rationale == llm.grounded_rationale(fallback_request)
    assert written.guardrails["passed"] is True
    tries = generator["tries"]
    assert [t["model"] for t in tries] == [PRIMARY, FALLBACK]
    assert [t["outcome"] for t in tries] == [primary_outcome, "accepted"]
    assert tries[1]["attempts"] == 1
    assert generator["attempts"] == tries[0]["attempts"] + 1
    return dict(generator)


async def test_a_failing_primary_is_retried_then_the_fallback_writes_the_text(fresh: Any) -> None:
    fresh.script = by_model(llm.status(500))
    written = await write(fresh, writer_tests.request_for())
    generator = assert_written_by_fallback(written, fresh, "http_500")
    assert models_asked(fresh) == [PRIMARY, PRIMARY, FALLBACK]  # the primary's retry, then one fallback try
    assert generator["tries"][0]["attempts"] == 2
    # The tokens of every try are counted: the failed primary's were not billed, the fallback's were.
    assert generator["tokens"] == {"prompt": 420, "completion": 60, "total": 480}


async def test_a_hung_primary_leaves_the_fallback_its_share_of_the_deadline(fresh: Any) -> None:
    fresh.script = by_model(llm.slow(5.0))
    started = time.monotonic()
    written = await write(fresh, writer_tests.request_for(), total_timeout_s=2.0, fallback_reserve_s=0.8)
    elapsed = time.monotonic() - started
    generator = assert_written_by_fallback(written, fresh, "timeout")
    assert "no answer within 1.2 s" in generator["tries"][0]["detail"]
    assert elapsed < 2.0 + 1.0, elapsed  # the same total deadline, not one per model (5 s each)


@pytest.mark.parametrize(
    ("script", "outcome"),
    [
        ("broken_json", "malformed_json"),
        ("wrong_schema", "schema_mismatch"),
        ("invented_numbers", "guardrails"),
    ],
)
async def test_bad_output_from_the_primary_goes_to_the_fallback(
    fresh: Any, script: str, outcome: str
) -> None:
    fresh.script = by_model(getattr(llm, script))
    written = await write(fresh, writer_tests.request_for())
    assert_written_by_fallback(written, fresh, outcome)
    assert models_asked(fresh) == [PRIMARY, FALLBACK]  # an answer that came back is not retried


async def test_when_both_models_fail_the_template_is_used_and_the_trace_has_both(fresh: Any) -> None:
    fresh.script = by_model(llm.status(500), llm.status(503))
    request = writer_tests.request_for()
    written = await write(fresh, request, max_retries=2)
    assert written.used == "template"
    assert written.rationale == request.rendered
    assert written.guardrails["passed"] is True
    fallback = written.generator["fallback"]
    assert (fallback["model"], fallback["reason"]) == (FALLBACK, "http_503")
    assert [(t["model"], t["outcome"], t["attempts"]) for t in fallback["tries"]] == [
        (PRIMARY, "http_500", 3),
        (FALLBACK, "http_503", 1),  # one try: no retries for the fallback
    ]
    assert models_asked(fresh) == [PRIMARY] * 3 + [FALLBACK]


async def test_both_hung_end_in_the_template_within_the_one_deadline(fresh: Any) -> None:
    fresh.script = by_model(llm.slow(5.0), llm.slow(5.0))
    request = writer_tests.request_for()
    started = time.monotonic()
    written = await write(fresh, request, total_timeout_s=1.5, fallback_reserve_s=0.5)
    assert time.monotonic() - started < 1.5 + 1.0  # not 5 s per model
    assert written.used == "template"
    assert [t["outcome"] for t in written.generator["fallback"]["tries"]] == ["timeout", "timeout"]


async def test_without_a_fallback_model_the_primary_alone_is_tried(fresh: Any) -> None:
    fresh.script = by_model(llm.status(500))
    written = await write(fresh, writer_tests.request_for(), fallback_model=None, max_retries=0)
    assert written.used == "template"
    assert models_asked(fresh) == [PRIMARY]
    assert [t["model"] for t in written.generator["fallback"]["tries"]] == [PRIMARY]


async def test_an_exhausted_token_budget_is_not_sent_to_the_fallback(fresh: Any) -> None:
    written = await write(fresh, writer_tests.request_for(), token_budget=50)
    assert written.generator["fallback"]["reason"] == "token_budget_exhausted"
    assert fresh.received == []


async def test_a_healthy_primary_writes_and_the_fallback_is_never_asked(fresh: Any) -> None:
    written = await write(fresh, writer_tests.request_for())
    assert written.generator["model"] == PRIMARY
    assert [t["outcome"] for t in written.generator["tries"]] == ["accepted"]
    assert models_asked(fresh) == [PRIMARY]


async def test_the_decision_trace_says_which_model_wrote_each_text(fresh: Any) -> None:
    # The primary fails for one catalog item only: that item's text is the fallback's, the others' the
    # primary's, and each item's trace says so.
    failing_title = writer_tests.request_for("edu-subscription-audit").title

    def script(body: dict[str, Any]) -> Any:
        if body["model"] == PRIMARY and failing_title in llm.Received(body, {}, 0).prompt:
            return llm.status(500)(body)
        return llm.good(body)

    fresh.script = script
    writer = writer_for(fresh, max_retries=0)
    try:
        result = await build_recommendations(
            writer_tests.report(), writer_tests.USER, rule_set_version="personas-v1", writer=writer
        )
    finally:
        await writer.aclose()
    writers = {item.item_id: item.trace["generator"]["model"] for item in result.items}
    assert writers["edu-subscription-audit"] == FALLBACK, writers
    assert {m for i, m in writers.items() if i != "edu-subscription-audit"} == {PRIMARY}
    assert all(item.generator == "llm" for item in result.items)


def test_the_models_temperature_and_max_tokens_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPENDSENSE_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("SPENDSENSE_OPENAI_MODEL", "model-a")
    monkeypatch.setenv("SPENDSENSE_OPENAI_FALLBACK_MODEL", "model-b")
    monkeypatch.setenv("SPENDSENSE_OPENAI_TEMPERATURE", "0.7")
    monkeypatch.setenv("SPENDSENSE_OPENAI_MAX_TOKENS", "1000")
    monkeypatch.setenv("SPENDSENSE_OPENAI_FALLBACK_RESERVE_S", "1.5")
    config = LlmConfig.from_settings(RecommenderSettings())
    assert config is not None
    assert (config.model, config.fallback_model, config.temperature, config.max_tokens) == (
        "model-a",
        "model-b",
        0.7,
        1000,
    )
    assert config.fallback_reserve_s == 1.5
    monkeypatch.setenv("SPENDSENSE_OPENAI_FALLBACK_MODEL", "")
    config = LlmConfig.from_settings(RecommenderSettings())
    assert config is not None
    assert config.fallback_model is None  # empty: no fallback
