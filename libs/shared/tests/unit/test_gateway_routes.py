"""The gateway route table: the most specific route wins, as in API Gateway."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spendsense_shared.gateway.routes import ROUTES, Route, resolve

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12)


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", "/api/v1/profile/u1/signals", "features"),
        ("GET", "/api/v1/profile/u1/persona", "features"),
        ("GET", "/api/v1/profile/u1", "profile"),
        ("GET", "/api/v1/profile/u1/", "profile"),
        ("POST", "/api/v1/uploads", "profile"),
        ("GET", "/api/v1/uploads/abc", "profile"),
        ("DELETE", "/api/v1/uploads/abc/files/1", "profile"),
        ("get", "/api/v1/uploads/abc", "profile"),
        ("POST", "/api/v1/auth/login", "auth"),
        ("GET", "/api/v1/auth/.well-known/jwks.json", "auth"),
        ("GET", "/api/v1/users/u1", "auth"),
        ("PUT", "/api/v1/consent/u1", "profile"),
        ("GET", "/api/v1/recommendations", "recommender"),
        ("POST", "/api/v1/operator/reviews/r1", "operator"),
        ("GET", "/api/v1/mobile/recommendations/u1", "recommender"),
        ("GET", "/api/v1/mobile/profile/u1", "profile"),
        ("POST", "/api/v1/mobile/consent/u1", "profile"),
        ("POST", "/api/v1/mobile/push/register", "profile"),
    ],
)
def test_resolve_picks_the_serving_service(method, path, service):
    route = resolve(method, path)

    assert route is not None
    assert route.service == service


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/unknown"),
        ("GET", "/"),
        ("GET", "/health"),
        ("POST", "/api/v1/profile/u1"),  # only GET is routed
        ("DELETE", "/api/v1/profile/u1/signals"),
        ("GET", "/api/v1/profile"),
        ("GET", "/api/v1/profile/u1/signals/extra"),
        ("GET", "/api/v1/uploadsx"),  # a prefix is a whole segment
        ("GET", "/api/v2/uploads/abc"),
        ("GET", "/api/v1/mobile/push/register"),
    ],
)
def test_unrouted_requests_resolve_to_none(method, path):
    assert resolve(method, path) is None


def test_specific_route_beats_a_parameterized_one_that_also_matches():
    signals = resolve("GET", "/api/v1/profile/u1/signals")

    assert signals == Route("GET", "/api/v1/profile/{user_id}/signals", "features")
    assert resolve("GET", "/api/v1/profile/signals") == Route("GET", "/api/v1/profile/{user_id}", "profile")


def test_route_keys_are_unique():
    keys = [r.route_key for r in ROUTES]

    assert len(keys) == len(set(keys))


def test_every_route_is_under_api_v1_with_a_known_method():
    for route in ROUTES:
        assert route.path.startswith("/api/v1/")
        assert route.method in {"ANY", *METHODS}


@st.composite
def request_for(draw, route: Route) -> tuple[str, str]:
    """A concrete request that ``route``'s template matches."""
    segments = []
    for segment in route.path.strip("/").split("/"):
        if segment == "{proxy+}":
            segments += draw(st.lists(SEGMENT, min_size=1, max_size=4))
        elif segment.startswith("{"):
            segments.append(draw(SEGMENT))
        else:
            segments.append(segment)
    method = draw(st.sampled_from(METHODS)) if route.method == "ANY" else route.method
    return method, "/" + "/".join(segments)


@given(data=st.data(), route=st.sampled_from(ROUTES))
def test_a_path_generated_from_a_route_template_resolves_to_that_routes_service(data, route):
    method, path = data.draw(request_for(route), label="request")

    resolved = resolve(method, path)

    assert route.matches(method, path)
    assert resolved is not None
    assert resolved.service == route.service
