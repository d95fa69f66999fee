"""Ingest throughput: parse + validate + Arrow for ~1,000,000 transactions, fast reader vs streaming reader,
and ``spendsense analyze`` end to end against a plain per-user reading, all in one run.

Data: synthetic users (``spendsense_cli.synthetic.build_user``, ~333 transactions each) written once into
bench/results/ingest-data/ (bench/ingest_data.py) as a ``{"users": [...]}`` JSON document, as JSON Lines
and as a zip of accounts/transactions/liabilities CSV (deflated; and the same members stored).

Part 1, per format, each measurement in a fresh process (imports done before the clock starts):

  * fast   - ``parse_file(reader="fast")``: msgspec + pyarrow.json / pyarrow.csv, column checks;
  * slow   - ``parse_file(reader="slow")``: the streaming reader (ijson / csv, record by record), the
             reader every upload went through before;
  * floor  - what the issue calls the floor: a typed msgspec decode of the JSON document (transactions as
             Structs), ``pyarrow.json.read_json`` of the JSON Lines, ``pyarrow.csv.read_csv`` of the
             transactions.csv (uncompressed; inflating it is timed apart).

  Wall and CPU seconds (CPU counts every thread), transactions/s, and memory: the peak resident set of
  the process, its peak anonymous memory (sampled every 10 ms; the fast reader maps the upload, and the
  mapped file's pages count as resident but not anonymous), and Arrow's pool peak.

Part 2, ~500,000 transactions: ``spendsense analyze FILE`` as a command (interpreter start, imports, parse,
signals, personas, reports, JSON on stdout to /dev/null) on the JSON Lines and on the JSON document,
against ``bench/ingest_plain.py`` on the JSON Lines (one ``json.loads`` per user and plain loops computing
the same signals roughly: the reading a developer would write without SpendSense). The command's fixed
cost (start-up and imports, measured on a one-user file) is reported apart; bytecode is cached (see
``_environment``). Memory: the peak resident set and anonymous memory summed over the command's process
tree (``analyze`` forks a worker), sampled every 10 ms.

The machine is shared (2 cores): wall times move with the load, which is printed with every figure. Each
measurement but the streaming reader's (minutes) is repeated ``--repeat`` times (3 by default), the
competitors in turn (floor, fast; analyze, plain), and the median run is reported with every run's
seconds beside it. Writes bench/results/ingest.json.

    .venv/bin/python bench/ingest.py [--transactions 1000000] [--analyze-transactions 500000] [--skip-slow]
                                     [--repeat 3] [--only parse|analyze]
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

sys.path.insert(0, str(Path(__file__).parent))
if TYPE_CHECKING:
    import ingest_data  # a helper beside this script (imported by main: a measuring child needs none of it)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ingest.json"
PYTHON = sys.executable
SPENDSENSE = str(Path(PYTHON).with_name("spendsense"))
TARGET_CSV_TX_PER_S = 1_000_000
FLOOR_FACTOR = 1.5
ANALYZE_FACTOR = 3.0


# -- one measurement, in a child process --------------------------------------------------------------------


class _Memory(threading.Thread):
    """Samples VmRSS and RssAnon of this process every 10 ms (kB from /proc/self/status)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_rss = 0
        self.peak_anon = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(0.01)

    def sample(self) -> None:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    self.peak_rss = max(self.peak_rss, int(line.split()[1]))
                elif line.startswith("RssAnon:"):
                    self.peak_anon = max(self.peak_anon, int(line.split()[1]))


class _Category(msgspec.Struct):
    primary: str
    detailed: str | None = None


class _Transaction(msgspec.Struct):
    transaction_id: str
    account_id: str
    date: str
    amount: float
    name: str
    payment_channel: str
    personal_finance_category: _Category
    pending: bool
    authorized_date: str | None = None
    iso_currency_code: str | None = None
    unofficial_currency_code: str | None = None
    merchant_name: str | None = None
    merchant_entity_id: str | None = None


class _User(msgspec.Struct):
    user_id: str
    transactions: list[_Transaction]
    accounts: list[dict[str, Any]] = []
    liabilities: dict[str, Any] = {}


class _Document(msgspec.Struct):
    users: list[_User]


def _floor_json(path: Path) -> int:
    """A typed msgspec decoder over the whole document: every transaction a Struct."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        doc = msgspec.json.Decoder(_Document).decode(data)
        return sum(len(u.transactions) for u in doc.users)


def _floor_jsonl(path: Path) -> int:
    import pyarrow.compute as pc
    import pyarrow.json as pj

    table = pj.read_json(path)
    return int(pc.sum(pc.list_value_length(table["transactions"])).as_py())


def _floor_csv(path: Path) -> int:
    import pyarrow.csv as pcsv

    return pcsv.read_csv(path).num_rows


def measure(kind: str, fmt: str, path: Path) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    from spendsense_profile.domain.ingest import parse_file

    pa.array(np.arange(3))  # pyarrow's first conversion imports pandas: not part of any reader
    memory = _Memory()
    memory.sample()
    memory.start()
    start, cpu = time.perf_counter(), time.process_time()
    if kind == "floor":
        rows = {"json": _floor_json, "jsonl": _floor_jsonl, "csv": _floor_csv}[fmt](path)
        problems: list[str] = []
    else:
        result = parse_file(path, reader=kind)
        rows = result.tables["transactions"].num_rows
        problems = [str(p) for p in result.problems[:3]]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    memory.running = False
    memory.sample()
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "transactions": rows,
        "tx_per_s": round(rows / wall) if wall else None,
        "peak_rss_mb": round(memory.peak_rss / 1024),
        "peak_anonymous_mb": round(memory.peak_anon / 1024),
        "arrow_pool_peak_mb": round(pa.default_memory_pool().max_memory() / 2**20),
        "problems": problems,
    }


def _environment() -> dict[str, str]:
    """The children's environment: bytecode cached (in bench/results/pycache, outside the sources), as on
    any machine where Python may write it. A machine with PYTHONDONTWRITEBYTECODE set compiles every
    module again in every process, ~2-3 s for this command's imports: a cost of that setting, not of
    the code, so it is left out of the figures."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / "bench" / "results" / "pycache")
    return env


def _child(kind: str, fmt: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, __file__, "--measure", kind, fmt, str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=_environment(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {fmt}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- part 1 -------------------------------------------------------------------------------------------------


def _members(files: ingest_data.Files, folder: Path) -> tuple[Path, Path, float]:
    """The transactions.csv of the zip, uncompressed (for the floor), the same zip with stored members, and
    how long inflating transactions.csv takes (zlib, one thread)."""
    plain = folder / f"{files.csv_zip.stem}.transactions.csv"
    stored = folder / f"{files.csv_zip.stem}.stored.zip"
    with zipfile.ZipFile(files.csv_zip) as archive:
        start = time.perf_counter()
        with archive.open("transactions.csv") as member:
            while member.read(16 * 2**20):
                pass
        inflate = time.perf_counter() - start
        if not plain.exists():
            plain.write_bytes(archive.read("transactions.csv"))
        if not stored.exists():
            with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as out:
                for info in archive.infolist():
                    out.writestr(info.filename, archive.read(info))
    return plain, stored, inflate


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (its memory figures with it), and every run's seconds and load."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    out = dict(ordered[(len(ordered) - 1) // 2])
    out["runs_seconds"] = [r["seconds"] for r in runs]
    out["runs_load_1m"] = [r["load_1m"] for r in runs]
    return out


def _loaded(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "load_1m": round(os.getloadavg()[0], 2)}


def part1(files: ingest_data.Files, skip_slow: bool, repeat: int) -> dict[str, Any]:
    plain_csv, stored_zip, inflate_s = _members(files, files.csv_zip.parent)
    cases = {
        "json": (files.json, "json", files.json),
        "jsonl": (files.jsonl, "jsonl", files.jsonl),
        "csv (zip, deflate)": (files.csv_zip, "csv", plain_csv),
        "csv (zip, stored)": (stored_zip, "csv", plain_csv),
    }
    out: dict[str, Any] = {"inflate_transactions_csv_s": round(inflate_s, 3)}
    for label, (path, fmt, floor_path) in cases.items():
        row: dict[str, Any] = {"file_mb": round(path.stat().st_size / 2**20)}
        runs: dict[str, list[dict[str, Any]]] = {"floor": [], "fast": []}
        for _ in range(repeat):  # in turn, so that a change of load hits both alike
            runs["floor"].append(_loaded(_child("floor", fmt, floor_path)))
            runs["fast"].append(_loaded(_child("fast", fmt, path)))
        row["floor"] = _median(runs["floor"])
        row["fast"] = _median(runs["fast"])
        if not skip_slow:
            row["slow"] = _median([_loaded(_child("slow", fmt, path))])
        row["fast_vs_floor"] = round(row["fast"]["seconds"] / row["floor"]["seconds"], 2)
        if "slow" in row:
            row["fast_vs_slow_speedup"] = round(row["slow"]["seconds"] / row["fast"]["seconds"], 1)
        out[label] = row
        _print_row(label, row)
    return out


def _print_row(label: str, row: dict[str, Any]) -> None:
    print(f"{label} ({row['file_mb']} MB), load {os.getloadavg()[0]:.1f}:")
    for kind in ("floor", "fast", "slow"):
        if kind in row:
            r = row[kind]
            print(
                f"  {kind:<6}{r['seconds']:>8.2f} s  cpu {r['cpu_seconds']:>6.2f} s"
                f"  {r['tx_per_s']:>11,} tx/s"
                f"  rss {r['peak_rss_mb']:>5} MB (anonymous {r['peak_anonymous_mb']} MB,"
                f" arrow {r['arrow_pool_peak_mb']} MB)  runs {r['runs_seconds']} s, load {r['runs_load_1m']}"
                f"{'  ' + r['problems'][0] if r['problems'] else ''}"
            )
    extra = f", {row['fast_vs_slow_speedup']}x the streaming reader" if "fast_vs_slow_speedup" in row else ""
    print(f"  fast = {row['fast_vs_floor']}x the floor's time{extra}", flush=True)


# -- part 2 -------------------------------------------------------------------------------------------------


def _timed(command: list[str]) -> dict[str, Any]:
    """Wall and CPU seconds of a command, and the peak memory of its whole process tree (the command
    forks workers): resident and anonymous, summed over the processes, sampled every 10 ms."""
    start = time.perf_counter()
    before = os.times()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE, env=_environment())
        sampler = _TreeMemory(child.pid)
        sampler.start()
        _, stderr = child.communicate()
        sampler.running = False
        sampler.join()
    after = os.times()
    if child.returncode != 0:
        raise RuntimeError(f"{command}: {stderr.decode()[-2000:]}")
    wall = time.perf_counter() - start
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(sampler.peak_rss / 1024),
        "peak_anonymous_mb": round(sampler.peak_anon / 1024),
    }


class _TreeMemory(threading.Thread):
    """Samples VmRSS and RssAnon summed over a process and its descendants every 10 ms (kB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss = 0
        self.peak_anon = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            rss = anon = 0
            for pid in self._tree(self.pid):
                found = _status_kb(pid)
                rss += found.get("VmRSS", 0)
                anon += found.get("RssAnon", 0)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, anon)
            time.sleep(0.01)

    def _tree(self, pid: int) -> list[int]:
        found = [pid]
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                children = task.read_text().split()
            except OSError:  # the thread or process ended meanwhile
                continue
            for child in children:
                found += self._tree(int(child))
        return found


def _status_kb(pid: int) -> dict[str, int]:
    try:
        with open(f"/proc/{pid}/status") as status:
            return {
                line.split(":")[0]: int(line.split()[1])
                for line in status
                if line.startswith(("VmRSS:", "RssAnon:"))
            }
    except OSError:  # the process ended meanwhile
        return {}


def part2(files: ingest_data.Files, processes: int, repeat: int) -> dict[str, Any]:
    n = files.transactions
    one_user = files.jsonl.with_name("one-user.jsonl")
    with files.jsonl.open("rb") as lines:
        one_user.write_bytes(lines.readline())
    runs = {
        "analyze (JSON Lines)": [SPENDSENSE, "analyze", str(files.jsonl), "--processes", str(processes)],
        "analyze (JSON)": [SPENDSENSE, "analyze", str(files.json), "--processes", str(processes)],
        "plain per-user reading (JSON Lines)": [
            PYTHON,
            str(Path(__file__).with_name("ingest_plain.py")),
            str(files.jsonl),
        ],
        "analyze start-up (one user)": [SPENDSENSE, "analyze", str(one_user)],
    }
    out: dict[str, Any] = {"transactions": n, "users": files.users, "processes": processes}
    _timed(runs["analyze start-up (one user)"])  # writes the bytecode cache if it is not there yet
    measured: dict[str, list[dict[str, Any]]] = {label: [] for label in runs}
    for _ in range(repeat):  # in turn, so that a change of load hits every command alike
        for label, command in runs.items():
            measured[label].append(_loaded(_timed(command)))
    for label in runs:
        r = _median(measured[label])
        if "one user" not in label:
            r["tx_per_s"] = round(n / r["seconds"])
        out[label] = r
        rate = f"{r['tx_per_s']:>9,} tx/s" if "tx_per_s" in r else ""
        print(
            f"  {label:<38}{r['seconds']:>7.2f} s  cpu {r['cpu_seconds']:>6.2f} s  {rate}"
            f"  rss {r['peak_rss_mb']} MB (anonymous {r['peak_anonymous_mb']} MB, all processes)"
            f"  runs {r['runs_seconds']} s, load {r['runs_load_1m']}",
            flush=True,
        )
    plain = out["plain per-user reading (JSON Lines)"]["seconds"]
    for label in ("analyze (JSON Lines)", "analyze (JSON)"):
        out[label]["speedup_vs_plain"] = round(plain / out[label]["seconds"], 2)
        print(f"  {label}: {out[label]['speedup_vs_plain']}x the plain reading (target {ANALYZE_FACTOR}x)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--analyze-transactions", type=int, default=500_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="for spendsense analyze")
    parser.add_argument("--skip-slow", action="store_true", help="skip the streaming reader (minutes)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (the median is kept)")
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "FORMAT", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only", choices=("parse", "analyze"), help="run one part (the other is left out of the results)"
    )
    args = parser.parse_args()
    if args.measure:
        kind, fmt, path = args.measure
        print(json.dumps(measure(kind, fmt, Path(path))))
        return

    import ingest_data

    started = time.perf_counter()
    big = (
        ingest_data.ensure(ingest_data.transactions_for(args.transactions))
        if args.only != "analyze"
        else None
    )
    small = ingest_data.ensure(ingest_data.transactions_for(args.analyze_transactions))
    print(f"data ready in {time.perf_counter() - started:.1f} s")
    parsing: dict[str, Any] | None = None
    if big is not None:
        print(f"part 1: parse + validate + Arrow, {big.transactions:,} transactions of {big.users:,} users")
        parsing = part1(big, args.skip_slow, args.repeat)
    analyzing: dict[str, Any] | None = None
    if args.only != "parse":
        print(
            f"part 2: spendsense analyze end to end, {small.transactions:,} transactions of {small.users:,} "
            "users"
        )
        analyzing = part2(small, args.processes, args.repeat)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "targets": {
            "fast_within_floor_factor": FLOOR_FACTOR,
            "csv_tx_per_s": TARGET_CSV_TX_PER_S,
            "analyze_vs_plain": ANALYZE_FACTOR,
        },
        "parse": parsing,
        "analyze": analyzing,
        "repeat": args.repeat,
        "median_note": "each figure is the median of `repeat` runs (the streaming reader: one run)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
