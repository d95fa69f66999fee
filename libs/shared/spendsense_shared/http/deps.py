"""FastAPI dependencies whose value ``bootstrap.py`` provides, so routers receive the use cases and
adapters the composition root built, never reach into ``app.state``.

A dependency marked :func:`wired` reads its value from the app it serves (``build_app`` records the
values in ``app.state``: see :func:`provide`). Why not ``app.dependency_overrides``: while that mapping is
not empty, FastAPI rebuilds the dependency tree of every route on every request (each parameter's
pydantic field and type adapter again), a fifth of a busy service's CPU. Overriding a wired dependency
in a test still works (FastAPI's overrides come first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request

from spendsense_shared.messagebus import MessageBus

_WIRED_ATTR = "_spendsense_wired"
_MISSING: Any = object()

Placeholder = TypeVar("Placeholder", bound=Callable[..., Any])


def wired(placeholder: Placeholder) -> Placeholder:
    """Marks a dependency that answers with :func:`wired_value` (``build_app`` puts it in ``app.state``)."""
    setattr(placeholder, _WIRED_ATTR, True)
    return placeholder


def is_wired(dependency: Callable[..., Any]) -> bool:
    return bool(getattr(dependency, _WIRED_ATTR, False))


def provide(app: FastAPI, values: Mapping[Callable[..., Any], Any]) -> None:
    """The values of ``app``'s wired dependencies (added to those it has)."""
    app.state.wired = {**getattr(app.state, "wired", {}), **values}


def wired_value(request: Request, dependency: Callable[..., Any], default: Any = _MISSING) -> Any:
    """What the app serving ``request`` provides for ``dependency`` (else ``default``, else an error)."""
    values: Mapping[Callable[..., Any], Any] = getattr(request.app.state, "wired", {})
    if dependency in values:
        return values[dependency]
    if default is not _MISSING:
        return default
    raise RuntimeError(f"no {dependency.__name__} is wired into this app")


@wired
async def message_bus(request: Request) -> MessageBus:
    bus: MessageBus = wired_value(request, message_bus)
    return bus


Bus = Annotated[MessageBus, Depends(message_bus)]
