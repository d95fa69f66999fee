"""The upload parser's forkserver preloads everything a parse imports: a parsing process forks from it
with the imports done, so nothing is imported per upload (pyarrow's compute functions import pandas on
first use: 0.3 s of every parsing process before pandas was preloaded)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys
    from multiprocessing import forkserver
    from spendsense_cli.synthetic import build_user
    from spendsense_profile.adapters.parsing import SandboxedParser

    SandboxedParser(None, {})  # sets the forkserver's preload list, as the worker's bootstrap does
    preloaded = forkserver._forkserver._preload_modules
    for name in preloaded:
        importlib.import_module(name)
    from spendsense_profile.adapters import parse_child

    users = [build_user(k, seed=5)[0] for k in range(3)]
    body = "".join(json.dumps(u) + "\\n" for u in users).encode()
    before = {name.partition(".")[0] for name in sys.modules}
    for filename, content in (("users.jsonl", body), ("user.json", json.dumps(users[0]).encode())):
        outcome = parse_child.parse_upload(content, filename=filename, default_user_id="ops")
        assert outcome.ok, outcome.problems
    print(json.dumps({"preloaded": preloaded,
                      "imported": sorted({n.partition(".")[0] for n in sys.modules} - before)}))
    """
)


def test_a_parse_imports_nothing_the_forkserver_did_not_preload() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = __import__("json").loads(run.stdout.strip().splitlines()[-1])
    assert result["imported"] == [], f"imported by the parse, not preloaded: {result['imported']}"
