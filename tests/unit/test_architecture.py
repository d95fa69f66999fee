"""The shape every service keeps: the import contracts (``[tool.importlinter]`` in pyproject.toml) hold,
and no router changes state — routers parse, authorize, call one handler and shape the answer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTER_MODULES = sorted(ROOT.glob("services/*/spendsense_*/api/*.py"))
WRITE_STATEMENTS = {"insert", "update", "delete"}


def state_changes(source: str) -> list[str]:
    """Calls that write to the database or publish an event: ``session.add``, ``execute(insert|update|
    delete…)``, ``publish``, ``commit``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, receiver = node.func.attr, ast.unparse(node.func.value)
        if name in ("publish", "commit", "add_all") or (name == "add" and "session" in receiver):
            found.append(f"line {node.lineno}: {receiver}.{name}(…)")
        elif name == "execute" and node.args:
            statement: ast.expr = node.args[0]
            while isinstance(statement, ast.Call):  # insert(t).values(...).on_conflict… → insert(t)
                called = ast.unparse(statement.func).rsplit(".", 1)[-1]
                if called in WRITE_STATEMENTS:
                    found.append(f"line {node.lineno}: execute({called}(…))")
                    break
                if not isinstance(statement.func, ast.Attribute):
                    break
                statement = statement.func.value
    return found


def test_the_router_scan_sees_every_kind_of_write() -> None:
    source = """
async def route(session, uow, bus):
    session.add(row)
    await session.execute(insert(table).values(a=1).on_conflict_do_nothing())
    await uow.session.execute(sa.update(table).where(x))
    await conn.execute(delete(table))
    uow.publish(event)
    await uow.commit()
    await session.execute(select(table))
    await bus.handle(command)
"""
    assert len(state_changes(source)) == 6


def test_there_are_routers_to_scan() -> None:
    assert {p.parts[-4] for p in ROUTER_MODULES} >= {"auth", "profile", "features", "recommender"}


@pytest.mark.parametrize("module", ROUTER_MODULES, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_routers_neither_write_nor_publish(module: Path) -> None:
    assert state_changes(module.read_text()) == [], f"{module.relative_to(ROOT)} changes state itself"


def test_import_contracts_hold() -> None:
    """Services import no other service; the shared library imports no service; domains are pure;
    handlers and routers reach adapters only through bootstrap."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
