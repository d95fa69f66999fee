"""The one route table: the local gateway routes with it, and API Gateway (Terraform) is generated from it.

Paths use API Gateway's syntax: ``{name}`` is one segment, ``{proxy+}`` the rest of the path. As in
API Gateway, the most specific route wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, … or ANY
    path: str
    service: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        regex = ""
        for segment in self.path.strip("/").split("/"):
            if segment == "{proxy+}":
                regex += r"/.+"
            elif segment.startswith("{") and segment.endswith("}"):
                regex += r"/[^/]+"
            else:
                regex += "/" + re.escape(segment)
        return re.compile(f"^{regex}/?$")

    @property
    def specificity(self) -> tuple[int, int, int]:
        segments = self.path.strip("/").split("/")
        literal = sum(1 for s in segments if not s.startswith("{"))
        return (0 if "{proxy+}" in self.path else 1, literal, len(segments))

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("ANY", method) and bool(self.pattern.match(path))


def _any(prefix: str, service: str) -> list[Route]:
    return [Route("ANY", prefix, service), Route("ANY", f"{prefix}/{{proxy+}}", service)]


ROUTES: tuple[Route, ...] = (
    *_any("/api/v1/auth", "auth"),
    *_any("/api/v1/users", "auth"),
    *_any("/api/v1/admin/erasures", "auth"),
    *_any("/api/v1/admin/dead-letters", "operator"),
    *_any("/api/v1/consent", "profile"),
    *_any("/api/v1/uploads", "profile"),
    Route("GET", "/api/v1/profile/{user_id}", "profile"),
    Route("GET", "/api/v1/profile/{user_id}/signals", "features"),
    Route("GET", "/api/v1/profile/{user_id}/persona", "features"),
    *_any("/api/v1/personas", "features"),
    *_any("/api/v1/recommendations", "recommender"),
    *_any("/api/v1/operator", "operator"),
    Route("GET", "/api/v1/mobile/recommendations/{user_id}", "recommender"),
    Route("GET", "/api/v1/mobile/profile/{user_id}", "profile"),
    Route("POST", "/api/v1/mobile/consent/{user_id}", "profile"),
    Route("POST", "/api/v1/mobile/push/register", "profile"),
)

_BY_SPECIFICITY = sorted(ROUTES, key=lambda r: r.specificity, reverse=True)


def resolve(method: str, path: str) -> Route | None:
    """The route that serves ``method path``, or None."""
    return next((r for r in _BY_SPECIFICITY if r.matches(method.upper(), path)), None)
