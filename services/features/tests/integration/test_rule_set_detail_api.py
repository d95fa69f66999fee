"""``GET /api/v1/personas/rules/{version}`` on the features service's real app and PostgreSQL: the packaged
version with its file's text, a version added through the API with its document as added and its author,
which one is active once another is activated; the rule set as evaluated lets two versions be compared;
operators and admins read, other users cannot; an unknown version is a 404."""

from __future__ import annotations

import copy

import yaml

from spendsense_features.bootstrap import SERVICE
from spendsense_features.domain.rules import load_rule_set

BASE = "/api/v1/personas/rules"


def added_rule_set() -> dict:
    document = copy.deepcopy(dict(load_rule_set().document))
    document["version"] = "personas-test-v2"
    for persona in document["personas"]:
        if persona["id"] == "subscription_heavy":
            persona["when"]["all"][0]["value"] = 1000
    return document


async def test_operators_read_each_versions_content_and_compare_two(service_client):
    client = await service_client(SERVICE)
    admin, operator = client.as_("admin-1", "admin"), client.as_("op-1", "operator")

    packaged = await client.get(f"{BASE}/personas-v1", headers=operator)
    assert packaged.status_code == 200, packaged.text
    body = packaged.json()
    assert {k: body[k] for k in ("version", "source", "active", "packaged", "activated_at")} == {
        "version": "personas-v1",
        "source": "packaged",
        "active": True,
        "packaged": True,
        "activated_at": None,
    }
    assert yaml.safe_load(body["source_text"]) == body["document"]
    assert [p["id"] for p in body["rule_set"]["personas"]] == [p["id"] for p in body["document"]["personas"]]

    added = await client.post(
        BASE,
        content=yaml.safe_dump(added_rule_set()),
        headers={**admin, "content-type": "application/yaml"},
    )
    assert added.status_code == 201, added.text
    activated = await client.post(f"{BASE}/personas-test-v2/activate", headers=admin)
    assert activated.status_code == 202, activated.text

    new = (await client.get(f"{BASE}/personas-test-v2", headers=admin)).json()
    old = (await client.get(f"{BASE}/personas-v1", headers=admin)).json()
    assert (new["source"], new["active"], new["packaged"], new["source_text"]) == (
        "admin-1",
        True,
        False,
        None,
    )
    assert new["activated_at"] is not None
    assert new["document"] == added_rule_set()
    assert old["active"] is False
    changed = [
        persona["id"]
        for persona, before in zip(new["rule_set"]["personas"], old["rule_set"]["personas"], strict=True)
        if persona != before
    ]
    assert changed == ["subscription_heavy"]
    listed = (await client.get(BASE, headers=operator)).json()["items"]
    assert {i["version"] for i in listed} == {"personas-v1", "personas-test-v2"}


async def test_only_staff_read_a_version_and_an_unknown_one_is_not_found(service_client):
    client = await service_client(SERVICE)

    assert (await client.get(f"{BASE}/personas-v1")).status_code == 401
    assert (await client.get(f"{BASE}/personas-v1", headers=client.as_("u1"))).status_code == 403
    missing = await client.get(f"{BASE}/nope", headers=client.as_("op-1", "operator"))
    assert missing.status_code == 404
    assert "'nope'" in missing.json()["error"]["message"]
