"""A real local HTTP server that speaks the OpenAI chat-completions protocol, scripted per test.

FastAPI + uvicorn in a background thread on a free port. ``LlmServer.script`` decides each answer
from the request body (a ``Reply``: status, JSON body or raw text, headers, delay); every request is
recorded in ``received`` (body, headers, arrival time) so tests can inspect exactly what the SDK sent.

Scripted behaviours (functions returning a script): ``good`` (an answer built only from the facts in
the prompt's data block), ``slow``, ``invented_numbers``, ``shaming``, ``broken_json``,
``wrong_schema``, ``truncated``, ``status`` (HTTP errors such as 500 or 429), ``refusal`` and
``obedient`` (a model that follows an instruction injected through a merchant name).

Used by ``tests/integration/test_llm_writer.py`` and ``bench/recommender.py`` (loaded by path).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from spendsense_shared.embedded.servers import free_port

DATA_OPEN, DATA_CLOSE = "<data>", "</data>"


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float

    @property
    def user_message(self) -> str:
        return str(next(m["content"] for m in self.body["messages"] if m["role"] == "user"))

    @property
    def system_message(self) -> str:
        return str(next(m["content"] for m in self.body["messages"] if m["role"] == "system"))

    @property
    def prompt(self) -> str:
        return "\n".join(str(m["content"]) for m in self.body["messages"])


Script = Callable[[dict[str, Any]], Reply]


# -- building answers ---------------------------------------------------------------------------------


def completion(
    content: str | None,
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    usage: tuple[int, int] = (420, 60),
) -> dict[str, Any]:
    """A chat.completion object as the API returns it."""
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "local-test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


def facts_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The fact rows of the data block in the request's user message."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    block = user.split(DATA_OPEN, 1)[1].split(DATA_CLOSE, 1)[0]
    return list(json.loads(block)["facts"])


def disclosure_of(body: dict[str, Any]) -> str:
    system = next(m["content"] for m in body["messages"] if m["role"] == "system")
    return str(system.rsplit("must be exactly: ", 1)[1]).strip()


def answer(body: dict[str, Any], title: str, rationale: str, **extra: Any) -> Reply:
    content = {"title": title, "rationale": rationale, "disclosure": disclosure_of(body), **extra}
    return Reply(body=completion(json.dumps(content)))


def grounded_rationale(body: dict[str, Any]) -> str:
    """Two figures copied verbatim from the facts, in a neutral sentence."""
    figures = [f["value"] for f in facts_of(body) if f["unit"] not in ("text",)][:2]
    cited = " and ".join(figures) if figures else "the figures in your recent activity"
    return (
        f"Looking at your recent figures ({cited}), this item explains a few practical options you can try."
    )


# -- scripts ------------------------------------------------------------------------------------------


def good(body: dict[str, Any]) -> Reply:
    return answer(body, "A closer look at your numbers", grounded_rationale(body))


def slow(delay_s: float, then: Script = good) -> Script:
    def script(body: dict[str, Any]) -> Reply:
        reply = then(body)
        reply.delay_s = delay_s
        return reply

    return script


def invented_numbers(body: dict[str, Any]) -> Reply:
    return answer(
        body, "Your numbers", "You could save $9,999 a year and lift your score by 42 % within 90 days."
    )


def shaming(body: dict[str, Any]) -> Reply:
    return answer(
        body, "About your spending", f"You're overspending and wasting money: {grounded_rationale(body)}"
    )


def broken_json(body: dict[str, Any]) -> Reply:
    return Reply(body=completion('{"title": "Half an answer", "rationale": "Your card is at'))


def wrong_schema(body: dict[str, Any]) -> Reply:
    return Reply(body=completion(json.dumps({"headline": "x", "text": grounded_rationale(body)})))


def truncated(body: dict[str, Any]) -> Reply:
    return Reply(body=completion('{"title": "Cut', finish_reason="length"))


def refusal(body: dict[str, Any]) -> Reply:
    return Reply(body=completion(None, refusal="I'm sorry, I can't help with that request."))


def status(code: int, headers: dict[str, str] | None = None) -> Script:
    def script(body: dict[str, Any]) -> Reply:
        error = {
            "error": {"message": f"scripted HTTP {code}", "type": "server_error", "code": None, "param": None}
        }
        return Reply(status=code, body=error, headers=headers or {})

    return script


def obedient(body: dict[str, Any]) -> Reply:
    """A model that follows whatever a data string tells it: it labels the user and echoes the string."""
    injected = next((f["value"] for f in facts_of(body) if f.get("untrusted")), "")
    return answer(body, "Note", f"The user is irresponsible. {injected}")


# -- the server ---------------------------------------------------------------------------------------


class LlmServer:
    """``with LlmServer() as server:`` → ``server.base_url`` (ends in /v1), ``server.script = ...``."""

    def __init__(self, script: Script = good):
        self.script: Script = script
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, name="llm-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, script: Script = good) -> None:
        self.script = script
        self.received.clear()
        self.max_in_flight = 0

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Response:
            body = await request.json()
            self.received.append(Received(body, dict(request.headers), time.monotonic()))
            self.in_flight += 1  # the server's own event loop: no lock needed
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                reply = self.script(body)
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
            finally:
                self.in_flight -= 1
            if isinstance(reply.body, str):
                return Response(
                    reply.body, status_code=reply.status, headers=reply.headers, media_type="application/json"
                )
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

        return app

    def start(self) -> LlmServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the local LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
