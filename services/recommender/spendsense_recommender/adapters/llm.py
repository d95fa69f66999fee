"""The OpenAI-backed writer: rephrases a rationale from the fact table, under guardrails, with fallback.

Any OpenAI-compatible endpoint works (``base_url``). Per request: the official SDK's ``AsyncOpenAI``
with a per-attempt timeout and its own retries with exponential backoff (429, 5xx, timeouts;
``Retry-After`` honoured); around that, a total deadline that also covers waiting for a slot. Per
process: a concurrency limit (``asyncio.Semaphore``) and a token budget (``max_tokens`` per request,
``token_budget`` per ``token_budget_window_s``). Answers must follow a strict JSON schema; accepted
answers are cached through an injected async cache (the service's Redis ``Cache``), keyed by the facts,
item, template, model and prompt version.

Nothing is accepted before it passes the same guardrails as template text (tone, grounding,
disclosure, length). Any failure — timeout, HTTP error after retries, refusal, truncation, malformed
JSON, a guardrail — returns the template text instead, and the trace says what happened: generator,
attempts, failure reason, latency, tokens, prompt hash, and the guardrail results of the rejected text.

Create one writer per process (it owns the semaphore, the budget and the HTTP connection pool):
``make_writer(settings, cache)`` returns it, or the template writer when no API key is configured.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from spendsense_recommender.domain.prompt import (
    PROMPT_VERSION,
    RESPONSE_SCHEMA,
    build_messages,
    cache_key,
    prompt_hash,
)
from spendsense_recommender.domain.writer import (
    TemplateWriter,
    Writer,
    WriteRequest,
    WrittenText,
    template_text,
)
from spendsense_shared.guardrails.checks import check_text
from spendsense_shared.logging import get_logger

__all__ = ["AsyncCache", "LlmConfig", "LlmFailure", "OpenAIWriter", "TokenBudget", "make_writer"]

log = get_logger(__name__)
_ATTEMPTS: ContextVar[list[float] | None] = ContextVar("llm_attempts", default=None)


class AsyncCache(Protocol):
    """What the writer needs from a cache (``spendsense_shared.cache.Cache`` fits)."""

    async def get(self, *parts: str) -> bytes | None: ...

    async def set(self, *parts: str, value: bytes | str, ttl_s: int | None = None) -> None: ...


class LlmConfig(BaseModel):
    """Writer settings. ``from_settings`` reads them from the service settings (``openai_*`` names)."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    timeout_s: float = Field(4.0, gt=0, description="per HTTP attempt")
    total_timeout_s: float = Field(5.0, gt=0, description="per text, including retries, backoff and queueing")
    max_retries: int = Field(2, ge=0)
    max_concurrency: int = Field(4, ge=1)
    max_tokens: int = Field(400, ge=16, description="completion tokens per request")
    token_budget: int = Field(1_000_000, ge=0, description="tokens per process per budget window")
    token_budget_window_s: float | None = Field(3600.0, gt=0, description="None: the budget never resets")
    temperature: float | None = Field(0.2, ge=0, le=2)
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1)

    @classmethod
    def from_settings(cls, settings: object) -> LlmConfig | None:
        """None when no API key is set (then the template writer is the default)."""
        key = getattr(settings, "openai_api_key", None)
        secret = key.get_secret_value() if isinstance(key, SecretStr) else key
        if not secret:
            return None
        values: dict[str, Any] = {"api_key": secret}
        for name in cls.model_fields:
            setting = getattr(settings, f"openai_{name}", None)
            if name != "api_key" and setting is not None:
                values[name] = setting
        if hasattr(settings, "openai_temperature"):
            # None is meaningful here: omit the parameter (some models accept no temperature).
            values["temperature"] = settings.openai_temperature
        return cls.model_validate(values)


class TokenBudget:
    """Tokens this process may spend per window. A request reserves its worst case first (prompt
    estimate + max completion tokens) and settles to what the API reports afterwards."""

    def __init__(self, limit: int, window_s: float | None = None):
        self.limit = limit
        self.window_s = window_s
        self.used = 0
        self._window_start = time.monotonic()

    def _roll(self) -> None:
        if self.window_s is not None and time.monotonic() - self._window_start >= self.window_s:
            self.used, self._window_start = 0, time.monotonic()

    def reserve(self, tokens: int) -> bool:
        self._roll()
        if self.used + tokens > self.limit:
            return False
        self.used += tokens
        return True

    def settle(self, reserved: int, actual: int) -> None:
        self.used = max(0, self.used - reserved + actual)

    @property
    def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    rationale: str
    disclosure: str


class LlmFailure(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class _Call:
    """What one write learned about the model call, for the trace."""

    attempts: int = 0
    cached: bool = False
    tokens: dict[str, int] = field(default_factory=dict)


def _parse(response: Any) -> _Answer:
    if not response.choices:
        raise LlmFailure("malformed", "no choices")
    choice = response.choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise LlmFailure("refusal", str(message.refusal)[:200])
    if choice.finish_reason == "length":
        raise LlmFailure("truncated", "the answer hit max_tokens")
    if choice.finish_reason == "content_filter":
        raise LlmFailure("content_filter")
    if not message.content:
        raise LlmFailure("empty", "no content")
    try:
        return _Answer.model_validate(json.loads(message.content))
    except json.JSONDecodeError as error:
        raise LlmFailure("malformed_json", str(error)[:200]) from None
    except ValidationError as error:
        raise LlmFailure("schema_mismatch", str(error.errors()[0]["msg"])[:200]) from None


def _api_failure(error: openai.OpenAIError) -> LlmFailure:
    if isinstance(error, openai.APITimeoutError):
        return LlmFailure("timeout", "every attempt timed out")
    if isinstance(error, openai.RateLimitError):
        return LlmFailure("rate_limited", f"HTTP 429 after retries: {error.message[:120]}")
    if isinstance(error, openai.APIStatusError):
        return LlmFailure(f"http_{error.status_code}", error.message[:160])
    if isinstance(error, openai.APIConnectionError):
        return LlmFailure("connection_error", str(error)[:160])
    return LlmFailure("client_error", f"{type(error).__name__}: {str(error)[:160]}")


async def _count_attempt(request: Any) -> None:
    attempts = _ATTEMPTS.get()
    if attempts is not None:
        attempts.append(time.monotonic())


class OpenAIWriter:
    """``Writer`` backed by an OpenAI-compatible chat-completions endpoint (see the module docstring)."""

    def __init__(self, config: LlmConfig, cache: AsyncCache | None = None, client: AsyncOpenAI | None = None):
        self.config = config
        self.cache = cache
        self.budget = TokenBudget(config.token_budget, config.token_budget_window_s)
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._client = client or AsyncOpenAI(
            api_key=config.api_key.get_secret_value(),
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [_count_attempt]}),
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def write(self, request: WriteRequest) -> WrittenText:
        started = time.perf_counter()
        messages = build_messages(request)
        about = {
            "model": self.config.model,
            "prompt_version": PROMPT_VERSION,
            "prompt_hash": prompt_hash(messages, self.config.model),
        }
        call = _Call()
        try:
            async with asyncio.timeout(self.config.total_timeout_s):
                answer = await self._answer(request, messages, call)
        except TimeoutError:
            return self._fallback(
                request,
                about,
                call,
                started,
                LlmFailure("timeout", f"no answer within {self.config.total_timeout_s:g} s"),
            )
        except LlmFailure as error:
            return self._fallback(request, about, call, started, error)
        report = check_text(
            answer.title, answer.rationale, answer.disclosure, request.facts, (request.title,)
        )
        if not report.passed:
            rejected = LlmFailure("guardrails", ", ".join(report.reasons))
            return self._fallback(request, about, call, started, rejected, report.to_dict())
        if not call.cached:
            await self._store(request, answer)
        generator = {
            "used": "llm",
            **about,
            **self._call_record(call, started),
            "template_index": request.template_index,
        }
        return WrittenText(answer.title, answer.rationale, answer.disclosure, report.to_dict(), generator)

    def _call_record(self, call: _Call, started: float) -> dict[str, Any]:
        return {
            "attempts": call.attempts,
            "cached": call.cached,
            "tokens": call.tokens,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def _fallback(
        self,
        request: WriteRequest,
        about: dict[str, Any],
        call: _Call,
        started: float,
        failure: LlmFailure,
        guardrails: dict[str, Any] | None = None,
    ) -> WrittenText:
        record = {
            "from": "llm",
            **about,
            "reason": failure.reason,
            "detail": failure.detail,
            **self._call_record(call, started),
        }
        if guardrails is not None:
            record["guardrails"] = guardrails
        log.info("llm_fallback", item_id=request.item_id, reason=failure.reason, attempts=call.attempts)
        return template_text(request, fallback=record, started=started)

    async def _answer(self, request: WriteRequest, messages: list[dict[str, str]], call: _Call) -> _Answer:
        cached = await self._cached(request)
        if cached is not None:
            call.cached = True
            return cached
        async with self._slots:
            return await self._complete(messages, call)

    async def _complete(self, messages: list[dict[str, str]], call: _Call) -> _Answer:
        # Worst case before the call: ~4 characters a token for the prompt, plus the completion cap.
        reserved = sum(len(m["content"]) for m in messages) // 4 + self.config.max_tokens
        if not self.budget.reserve(reserved):
            raise LlmFailure("token_budget_exhausted", f"{self.budget.remaining} tokens left in this window")
        attempts: list[float] = []
        _ATTEMPTS.set(attempts)
        used = reserved  # a timed-out request may still have been billed: keep the reservation
        try:
            response = await self._client.chat.completions.create(**self._arguments(messages))
            used = self._record_usage(response, call)
            return _parse(response)
        except openai.OpenAIError as error:
            if isinstance(error, openai.APIStatusError):
                used = 0  # rejected requests are not billed
            raise _api_failure(error) from None
        finally:
            call.attempts = len(attempts)
            self.budget.settle(reserved, used)

    def _arguments(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "response_format": {"type": "json_schema", "json_schema": RESPONSE_SCHEMA},
            "max_completion_tokens": self.config.max_tokens,
        }
        if self.config.temperature is not None:
            arguments["temperature"] = self.config.temperature
        return arguments

    @staticmethod
    def _record_usage(response: Any, call: _Call) -> int:
        usage = getattr(response, "usage", None)
        if usage is None:
            return 0
        call.tokens = {
            "prompt": int(usage.prompt_tokens or 0),
            "completion": int(usage.completion_tokens or 0),
            "total": int(usage.total_tokens or 0),
        }
        return call.tokens["total"]

    def _key(self, request: WriteRequest) -> tuple[str, str, str]:
        return ("llm", PROMPT_VERSION, cache_key(request, self.config.model))

    async def _cached(self, request: WriteRequest) -> _Answer | None:
        if self.cache is None:
            return None
        try:
            raw = await self.cache.get(*self._key(request))
            return None if raw is None else _Answer.model_validate_json(raw)
        except Exception as error:  # a cache outage or a bad entry costs a model call, nothing more
            log.warning("llm_cache_read_failed", error=str(error)[:200])
            return None

    async def _store(self, request: WriteRequest, answer: _Answer) -> None:
        if self.cache is None:
            return
        try:
            await self.cache.set(
                *self._key(request), value=answer.model_dump_json(), ttl_s=self.config.cache_ttl_s
            )
        except Exception as error:
            log.warning("llm_cache_write_failed", error=str(error)[:200])


def make_writer(settings: object, cache: AsyncCache | None = None) -> Writer:
    """The OpenAI-backed writer when ``settings.openai_api_key`` is set, else the template writer."""
    config = LlmConfig.from_settings(settings)
    return OpenAIWriter(config, cache) if config is not None else TemplateWriter()
