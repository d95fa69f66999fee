"""The OpenAI writer's settings and its per-process token budget (no network here)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from pydantic import SecretStr, ValidationError

from spendsense_recommender.adapters.llm import LlmConfig, OpenAIWriter, TokenBudget, make_writer
from spendsense_recommender.domain import TemplateWriter


def test_without_an_api_key_the_template_writer_is_the_default() -> None:
    for key in (None, "", SecretStr("")):
        settings = SimpleNamespace(openai_api_key=key, openai_model="gpt-x")
        assert LlmConfig.from_settings(settings) is None
        assert isinstance(make_writer(settings), TemplateWriter)
    assert isinstance(make_writer(object()), TemplateWriter)


async def test_with_an_api_key_the_openai_writer_reads_every_setting() -> None:
    settings = SimpleNamespace(
        openai_api_key=SecretStr("sk-test"),
        openai_model="gpt-test",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_timeout_s=1.5,
        openai_total_timeout_s=4.0,
        openai_max_retries=3,
        openai_max_concurrency=2,
        openai_max_tokens=300,
        openai_token_budget=10_000,
        openai_token_budget_window_s=60.0,
        openai_temperature=None,
        openai_cache_ttl_s=600,
    )
    writer = make_writer(settings)
    assert isinstance(writer, OpenAIWriter)
    config = writer.config
    assert (config.model, config.base_url, config.timeout_s, config.total_timeout_s) == (
        "gpt-test",
        "http://127.0.0.1:9/v1",
        1.5,
        4.0,
    )
    assert (config.max_retries, config.max_concurrency, config.max_tokens, config.cache_ttl_s) == (
        3,
        2,
        300,
        600,
    )
    assert writer.budget.limit == 10_000
    assert config.temperature is None  # explicitly None: the parameter is left out of requests
    assert "temperature" not in writer._arguments([])
    assert config.api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(config)
    await writer.aclose()


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        LlmConfig.from_settings(SimpleNamespace(openai_api_key="k", openai_max_concurrency=0))


def test_the_token_budget_reserves_settles_and_refuses() -> None:
    budget = TokenBudget(1_000)
    assert budget.reserve(600)
    assert not budget.reserve(500)  # would exceed the budget
    budget.settle(600, 250)  # the call used fewer tokens than reserved
    assert budget.remaining == 750
    assert budget.reserve(700)
    budget.settle(700, 0)  # a rejected request is not billed
    assert budget.remaining == 750


def test_the_token_budget_resets_each_window() -> None:
    budget = TokenBudget(100, window_s=0.05)
    assert budget.reserve(100)
    assert not budget.reserve(1)
    time.sleep(0.06)
    assert budget.reserve(100)
