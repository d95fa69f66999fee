"""The OpenAI-backed writer: rephrases a rationale from the fact table, under guardrails, with fallback.

Any OpenAI-compatible endpoint works (``base_url``). Per request: the official SDK's ``AsyncOpenAI``
with a per-attempt timeout and its own retries with exponential backoff (429, 5xx, timeouts;
``Retry-After`` honoured); around that, a total deadline that also covers waiting for a slot. Per
process: a concurrency limit (``asyncio.Semaphore``) and a token budget (``max_tokens`` per request,
``token_budget`` per ``token_budget_window_s``). Answers must follow a strict JSON schema; accepted
answers are cached through an injected async cache (the service's Redis ``Cache``), keyed by the facts,
item, template, model and prompt version.

Nothing is accepted before it passes the same guardrails as template text (tone, grounding,
disclosure, length). When the primary model fails — timeout, HTTP error after retries, refusal,
truncation, malformed JSON, a guardrail — the fallback model (``fallback_model``) gets one try, without
retries, inside the same total deadline: the primary gets the deadline minus ``fallback_reserve_s``, so
a hung primary still leaves the fallback its time. When both fail (or no fallback is configured) the
template text is used. The trace says what happened: which model wrote the text (``model``), every
model tried (``tries``: outcome, attempts, latency, tokens), temperature and max tokens, failure reason,
prompt hash, and the guardrail results of the rejected text. Only the primary's answers are cached, so
a recovered primary is used again at once.

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
    fallback_model: str | None = Field(None, description="one try when the primary fails; None: no fallback")
    fallback_reserve_s: float = Field(2.0, gt=0, description="of total_timeout_s kept for the fallback's try")
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
        if not values.get("fallback_model"):  # an empty SPENDSENSE_OPENAI_FALLBACK_MODEL means none
            values.pop("fallback_model", None)
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


# A failure the fallback model cannot help with: the process has no tokens left for any model.
_NO_FALLBACK = frozenset({"token_budget_exhausted"})
# Below this, a fallback try could not even get an answer back: the template is used at once.
_MIN_FALLBACK_S = 0.05


@dataclass
class _Try:
    """One model's try at a text: its answer (once the guardrails passed) or why it failed."""

    model: str
    call: _Call
    answer: _Answer | None = None
    failure: LlmFailure | None = None
    guardrails: dict[str, Any] | None = None
    latency_ms: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.answer is not None

    def record(self) -> dict[str, Any]:
        """This try in the trace: which model, what came of it, what it cost."""
        return {
            "model": self.model,
            "outcome": "accepted" if self.failure is None else self.failure.reason,
            "detail": "" if self.failure is None else self.failure.detail,
            "attempts": self.call.attempts,
            "cached": self.call.cached,
            "tokens": self.call.tokens,
            "latency_ms": self.latency_ms,
        }


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
        tries: list[_Try] = []
        fallback = self.config.fallback_model
        total = self.config.total_timeout_s
        # With a fallback model, the primary must leave it time: a hung primary would otherwise spend it all.
        primary_budget = total - min(self.config.fallback_reserve_s, total / 2) if fallback else total
        first = await self._try(self.config.model, request, messages, primary_budget, primary=True)
        tries.append(first)
        if first.accepted or not fallback or (first.failure and first.failure.reason in _NO_FALLBACK):
            return await self._result(request, tries, started)
        remaining = total - (time.perf_counter() - started)
        if remaining < _MIN_FALLBACK_S:
            return await self._result(request, tries, started)
        tries.append(await self._try(fallback, request, messages, remaining, primary=False))
        return await self._result(request, tries, started)

    async def _try(
        self,
        model: str,
        request: WriteRequest,
        messages: list[dict[str, str]],
        budget_s: float,
        *,
        primary: bool,
    ) -> _Try:
        """One model's try: the primary with the SDK's retries and the cache, the fallback once."""
        started = time.perf_counter()
        attempt = _Try(model=model, call=_Call())
        try:
            async with asyncio.timeout(budget_s):
                attempt.answer = await self._answer(request, messages, model, attempt.call, primary, budget_s)
        except TimeoutError:
            attempt.failure = LlmFailure("timeout", f"no answer within {round(budget_s, 2):g} s")
        except LlmFailure as error:
            attempt.failure = error
        if attempt.answer is not None:
            answer = attempt.answer
            report = check_text(
                answer.title,
                answer.rationale,
                answer.disclosure,
                request.facts,
                (request.title,),
                request.catalog_text,
            )
            attempt.guardrails = report.to_dict()
            if not report.passed:
                attempt.answer = None
                attempt.failure = LlmFailure("guardrails", ", ".join(report.reasons))
        attempt.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if attempt.failure is not None:
            log.info("llm_try_failed", item_id=request.item_id, model=model, reason=attempt.failure.reason)
        return attempt

    async def _result(self, request: WriteRequest, tries: list[_Try], started: float) -> WrittenText:
        last = tries[-1]
        about = {
            "model": last.model,
            "prompt_version": PROMPT_VERSION,
            "prompt_hash": prompt_hash(build_messages(request), last.model),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        record = {**about, **self._call_record(tries, started), "tries": [t.record() for t in tries]}
        if last.answer is not None and last.guardrails is not None:
            if last.model == self.config.model and not last.call.cached:
                await self._store(request, last.answer)
            answer = last.answer
            generator = {"used": "llm", **record, "template_index": request.template_index}
            return WrittenText(answer.title, answer.rationale, answer.disclosure, last.guardrails, generator)
        assert last.failure is not None
        fallback = {"from": "llm", **record, "reason": last.failure.reason, "detail": last.failure.detail}
        if last.guardrails is not None:
            fallback["guardrails"] = last.guardrails
        log.info(
            "llm_fallback",
            item_id=request.item_id,
            reason=last.failure.reason,
            models=[t.model for t in tries],
        )
        return template_text(request, fallback=fallback, started=started)

    @staticmethod
    def _call_record(tries: list[_Try], started: float) -> dict[str, Any]:
        tokens: dict[str, int] = {}
        for attempt in tries:
            for name, count in attempt.call.tokens.items():
                tokens[name] = tokens.get(name, 0) + count
        return {
            "attempts": sum(t.call.attempts for t in tries),
            "cached": tries[-1].call.cached,
            "tokens": tokens,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    async def _answer(
        self,
        request: WriteRequest,
        messages: list[dict[str, str]],
        model: str,
        call: _Call,
        primary: bool,
        budget_s: float,
    ) -> _Answer:
        if primary:
            cached = await self._cached(request)
            if cached is not None:
                call.cached = True
                return cached
        async with self._slots:
            return await self._complete(messages, model, call, primary, budget_s)

    async def _complete(
        self, messages: list[dict[str, str]], model: str, call: _Call, primary: bool, budget_s: float
    ) -> _Answer:
        # Worst case before the call: ~4 characters a token for the prompt, plus the completion cap.
        reserved = sum(len(m["content"]) for m in messages) // 4 + self.config.max_tokens
        if not self.budget.reserve(reserved):
            raise LlmFailure("token_budget_exhausted", f"{self.budget.remaining} tokens left in this window")
        attempts: list[float] = []
        _ATTEMPTS.set(attempts)
        used = reserved  # a timed-out request may still have been billed: keep the reservation
        # The fallback gets exactly one attempt, bounded by what is left of the deadline.
        client = (
            self._client
            if primary
            else self._client.with_options(max_retries=0, timeout=min(self.config.timeout_s, budget_s))
        )
        try:
            response = await client.chat.completions.create(**self._arguments(messages, model))
            used = self._record_usage(response, call)
            return _parse(response)
        except openai.OpenAIError as error:
            if isinstance(error, openai.APIStatusError):
                used = 0  # rejected requests are not billed
            raise _api_failure(error) from None
        finally:
            call.attempts = len(attempts)
            self.budget.settle(reserved, used)

    def _arguments(self, messages: list[dict[str, str]], model: str | None = None) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": model or self.config.model,
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
