"""Recurring-stream detection (subscriptions, bills, pay cheques), vectorized over all users at once.

A stream is every posted transaction of one user with one merchant in one direction (outflow or
inflow) inside the lookback. Transactions on the same day are one *event* (a split charge is still one
charge). A stream is detected when

* every gap between consecutive events lies in one cadence band (weekly 5-9 days, bi-weekly 12-16,
  semi-monthly 12-19 for inflows only, monthly 26-35), and
* every event amount is within ``AMOUNT_TOLERANCE`` (20 %) of the stream's median amount — as a
  relative difference, ``|a - m| <= 20 % x max(a, m)``, so amounts within ±10 % of a price always
  qualify — or the events split at one point into two such stable runs of at least two events each
  (a price change: reported, not a reason to split the stream). A clean step between two tight
  price levels (each within ``TIGHT_TOLERANCE``, 2 %, and more than 2 % apart) is reported as a
  price change even when the whole stream is within 20 %.

Detected streams with ≥ ``MIN_RECURRING`` events are recurring (Plaid ``MATURE`` while active); with
two events they are ``EARLY_DETECTION``; a stream whose next event is overdue is ``TOMBSTONED``.

The work is sorts, ``bincount`` and ``reduceat`` over flat arrays: no Python loop per transaction,
merchant or stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "AMOUNT_TOLERANCE",
    "BANDS",
    "BIWEEKLY_MAX_MEAN_GAP",
    "CADENCES",
    "FREQUENCIES",
    "MIN_RECURRING",
    "TIGHT_TOLERANCE",
    "EventTable",
    "StreamCandidates",
    "Streams",
    "build_events",
    "detect_streams",
    "group_median",
    "group_sum",
]

AMOUNT_TOLERANCE = 0.20
TIGHT_TOLERANCE = 0.02
MIN_RECURRING = 3
WEEKLY, BIWEEKLY, SEMI_MONTHLY, MONTHLY = 0, 1, 2, 3
CADENCES = ("weekly", "biweekly", "semi_monthly", "monthly")
FREQUENCIES = ("WEEKLY", "BIWEEKLY", "SEMI_MONTHLY", "MONTHLY")
# Allowed gap (days, inclusive) per cadence: months are 28-31 days and merchants shift charges off
# weekends, hence the slack around 7 / 14 / 15.2 / 30.4.
BANDS = ((5, 9), (12, 16), (12, 19), (26, 35))
NOMINAL_DAYS = (7.0, 14.0, 30.4375 / 2, 30.4375)
# A bi-weekly schedule is exactly 14 days apart; semi-monthly (1st/15th) averages 15.2.
BIWEEKLY_MAX_MEAN_GAP = 14.6
_EPS = 1e-9


def group_sum(group: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """``weights`` summed per group code, as floats: ``np.bincount`` gives integer zeros when no code is
    given at all, and a user's figures must not depend on which other users share the frame (``0`` for
    one split of the users, ``0.0`` for another)."""
    return np.bincount(group, weights, minlength=n_groups).astype(np.float64, copy=False)


@dataclass(frozen=True)
class StreamCandidates:
    """Flat arrays, one entry per eligible transaction (already filtered by category and account)."""

    user: np.ndarray  # int64 user code (index into ``as_of``)
    key: np.ndarray  # int64 merchant key; -1 = unidentifiable, ignored
    inflow: np.ndarray  # bool: money in (income) vs out
    day: np.ndarray  # int64 days since 1970-01-01
    amount: np.ndarray  # float64 absolute amount (> 0)
    row: np.ndarray  # int64 the caller's row id, handed back in ``Streams.member_row``
    labels: np.ndarray | None = None  # text of each merchant key (for stable stream ids)


@dataclass(frozen=True)
class EventTable:
    """Candidates sorted by (user, direction, merchant, day) and grouped into same-day *events*, built
    once and shared by every lookback (a shorter lookback is a subset of the same events)."""

    code: np.ndarray  # stream code per event
    day: np.ndarray  # per event
    amount: np.ndarray  # per event: same-day amounts summed
    user: np.ndarray  # per event
    key: np.ndarray  # per event
    inflow: np.ndarray  # per event (bool)
    tx_row: np.ndarray  # caller row ids in sorted order
    tx_start: np.ndarray  # first sorted transaction of each event, plus the total at the end
    labels: np.ndarray


def build_events(c: StreamCandidates) -> EventTable:
    """Sort the candidates once and group them into same-day events.

    The sort key packs (user, direction, merchant, day) into one int64, so one argsort orders
    everything and event boundaries are where the sorted key changes."""
    valid = c.key >= 0
    if valid.all():  # the usual case: no copies
        user, key, inflow, day, rows = c.user, c.key, c.inflow, c.day, None
    else:
        rows = np.flatnonzero(valid)
        user, key, inflow, day = c.user[rows], c.key[rows], c.inflow[rows], c.day[rows]
    n_keys = int(key.max()) + 1 if key.size else 1
    low = int(day.min()) if day.size else 0
    span = (int(day.max()) - low + 1) if day.size else 1
    code = (user * 2 + inflow) * n_keys + key
    labels = c.labels
    if labels is None:
        labels = np.array([str(k) for k in range(n_keys)], dtype=object)
    if code.size and int(code.max()) >= (2**62) // span:
        order = np.lexsort((day, code))  # key space too large to pack into one int64
        code, day = code[order], day[order]
        new_event = np.ones(order.size, dtype=bool)
        new_event[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    else:
        packed = code * span + (day - low)
        order = np.argsort(packed, kind="stable")  # ties (same day) in row order, whatever the batch
        packed = packed[order]
        new_event = np.ones(order.size, dtype=bool)
        new_event[1:] = packed[1:] != packed[:-1]
    starts = np.flatnonzero(new_event)
    if rows is not None:
        order = rows[order]
    first = order[starts]  # the first transaction of each event
    ev_user, ev_key, ev_inflow = c.user[first], c.key[first], c.inflow[first].astype(bool)
    return EventTable(
        code=(ev_user * 2 + ev_inflow) * n_keys + ev_key,
        day=c.day[first],
        amount=np.add.reduceat(c.amount[order], starts) if starts.size else np.zeros(0),
        user=ev_user,
        key=ev_key,
        inflow=ev_inflow,
        tx_row=c.row[order],
        tx_start=np.append(starts, order.size),
        labels=labels,
    )


@dataclass(frozen=True)
class Streams:
    """Detected streams: ``table`` has one row per stream; the member transactions of stream ``i`` are
    ``member_row[member_start[i]:member_start[i + 1]]`` in date order."""

    table: pd.DataFrame
    member_row: np.ndarray
    member_start: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    def members(self) -> list[np.ndarray]:
        return [
            self.member_row[a:b] for a, b in zip(self.member_start[:-1], self.member_start[1:], strict=True)
        ]


_TABLE_COLUMNS = (
    "user",
    "key",
    "inflow",
    "count",
    "tx_count",
    "first_day",
    "last_day",
    "cadence",
    "median_gap",
    "gap_max_deviation",
    "amount_cv",
    "typical_amount",
    "average_amount",
    "last_amount",
    "change_from",
    "change_to",
    "change_day",
    "predicted_next_day",
    "is_active",
    "recurring",
    "window_amount",
)


def _empty() -> Streams:
    table = pd.DataFrame({name: np.array([], dtype=float) for name in _TABLE_COLUMNS})
    return Streams(table, np.array([], dtype=np.int64), np.zeros(1, dtype=np.int64))


def group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values`` per integer ``group`` (NaN for empty groups), by one sort."""
    counts = np.bincount(group, minlength=n_groups)
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    ordered = values[np.lexsort((values, group))]
    starts = np.cumsum(counts) - counts
    has = counts > 0
    lo = (starts + (counts - 1) // 2)[has]
    hi = (starts + counts // 2)[has]
    out[has] = (ordered[lo] + ordered[hi]) / 2.0
    return out


def _all_per_group(ok: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """True for groups where every member is ``ok`` (vacuously true for empty groups)."""
    return np.bincount(group[~ok], minlength=n_groups) == 0


@dataclass
class _Events:
    """The events inside one lookback, grouped into streams (all arrays per selected event unless
    noted)."""

    selected: np.ndarray  # index into the EventTable
    day: np.ndarray
    amount: np.ndarray
    stream: np.ndarray  # stream index per event
    stream_start: np.ndarray  # per stream: its first event
    count: np.ndarray  # per stream: number of events
    user: np.ndarray  # per stream
    key: np.ndarray  # per stream
    inflow: np.ndarray  # per stream


def _events(table: EventTable, as_of: np.ndarray, lookback: int) -> _Events | None:
    end = as_of[table.user]
    selected = np.flatnonzero((table.day <= end) & (table.day > end - lookback))
    if selected.size == 0:
        return None
    code = table.code[selected]
    new_stream = np.ones(selected.size, dtype=bool)
    new_stream[1:] = code[1:] != code[:-1]
    stream_start = np.flatnonzero(new_stream)
    first = selected[stream_start]
    return _Events(
        selected=selected,
        day=table.day[selected],
        amount=table.amount[selected],
        stream=np.cumsum(new_stream) - 1,
        stream_start=stream_start,
        count=np.diff(np.append(stream_start, selected.size)),
        user=table.user[first],
        key=table.key[first],
        inflow=table.inflow[first],
    )


def _cadence(ev: _Events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cadence per stream (-1 = irregular) from the gaps between consecutive events.

    A stream's gaps are contiguous, so "every gap in the band" is one ``bitwise_and.reduceat`` over a
    per-gap bit mask of the bands it falls in."""
    n_streams = ev.count.size
    follows = ev.stream[1:] == ev.stream[:-1]
    gap = (ev.day[1:] - ev.day[:-1])[follows]
    gap_stream = ev.stream[1:][follows]
    bits = np.zeros(gap.size, dtype=np.uint8)
    for band, (lo, hi) in enumerate(BANDS):
        bits |= (((gap >= lo) & (gap <= hi)).astype(np.uint8)) << band
    has_gap = ev.count >= 2
    offsets = (np.cumsum(ev.count - 1) - (ev.count - 1))[has_gap]
    all_bits = np.zeros(n_streams, dtype=np.uint8)
    mean_gap = np.zeros(n_streams)
    if gap.size:
        all_bits[has_gap] = np.bitwise_and.reduceat(bits, offsets)
        mean_gap[has_gap] = np.add.reduceat(gap, offsets) / (ev.count[has_gap] - 1)
    ok = [(all_bits >> band & 1).astype(bool) & has_gap for band in range(len(BANDS))]
    cadence = np.select(
        [
            ok[WEEKLY],
            ok[BIWEEKLY] & (~ev.inflow | (mean_gap < BIWEEKLY_MAX_MEAN_GAP)),
            ok[SEMI_MONTHLY] & ev.inflow,
            ok[MONTHLY],
        ],
        [WEEKLY, BIWEEKLY, SEMI_MONTHLY, MONTHLY],
        default=-1,
    )
    return cadence, gap, gap_stream


def _within(amount: np.ndarray, median: np.ndarray, tolerance: float = AMOUNT_TOLERANCE) -> np.ndarray:
    """Relative difference to the median within ``tolerance`` (of the larger of the two)."""
    return np.abs(amount - median) <= tolerance * np.maximum(amount, median) + _EPS


@dataclass
class _PriceChange:
    """Per stream: the best single split and whether both sides are stable (20 %) or tight (2 %)."""

    stable: np.ndarray
    tight: np.ndarray
    before: np.ndarray  # median before the change
    after: np.ndarray  # median from the change on
    day: np.ndarray  # first event at the new price (-1: none)


def _price_change(ev: _Events, candidate: np.ndarray) -> _PriceChange:
    """For candidate streams (regular, ≥ 4 events) find the single split that best separates two price
    levels: least squared error around the two means, each side ≥ 2 events (one vectorized pass with
    prefix sums). Then check each side against its own median."""
    n_streams = ev.count.size
    out = _PriceChange(
        stable=np.zeros(n_streams, dtype=bool),
        tight=np.zeros(n_streams, dtype=bool),
        before=np.full(n_streams, np.nan),
        after=np.full(n_streams, np.nan),
        day=np.full(n_streams, -1, dtype=np.int64),
    )
    sel = np.flatnonzero(candidate[ev.stream])
    if sel.size == 0:
        return out
    sid = ev.stream[sel]
    amount = ev.amount[sel]
    n = ev.count[sid]
    pos = sel - ev.stream_start[sid]  # position of the event inside its stream
    # prefix sums of the amounts *before* each event, per stream
    cum = np.cumsum(amount) - amount
    cum_sq = np.cumsum(amount * amount) - amount * amount
    first = np.flatnonzero(pos == 0)
    left = cum - np.repeat(cum[first], ev.count[sid[first]])
    left_sq = cum_sq - np.repeat(cum_sq[first], ev.count[sid[first]])
    total = group_sum(sid, amount, n_streams)[sid]
    total_sq = group_sum(sid, amount * amount, n_streams)[sid]
    with np.errstate(divide="ignore", invalid="ignore"):
        sse = (left_sq - left * left / pos) + (
            (total_sq - left_sq) - (total - left) ** 2 / np.maximum(n - pos, 1)
        )
    cand = np.flatnonzero((pos >= 2) & (pos <= n - 2))
    order = cand[np.lexsort((sse[cand], sid[cand]))]
    _, first_of = np.unique(sid[order], return_index=True)
    best = order[first_of]  # the best split event per candidate stream
    split_at = np.full(n_streams, np.iinfo(np.int64).max)
    split_at[sid[best]] = pos[best]
    seg = sid * 2 + (pos >= split_at[sid])
    seg_median = group_median(seg, amount, n_streams * 2)
    streams = sid[best]
    out.stable[streams] = _all_per_group(_within(amount, seg_median[seg]), sid, n_streams)[streams]
    tight = _within(amount, seg_median[seg], TIGHT_TOLERANCE)
    out.tight[streams] = _all_per_group(tight, sid, n_streams)[streams]
    out.before[streams] = seg_median[streams * 2]
    out.after[streams] = seg_median[streams * 2 + 1]
    out.day[streams] = ev.day[sel[best]]
    return out


def detect_streams(
    candidates: StreamCandidates | EventTable, as_of: np.ndarray, lookback: int, window: int | None = None
) -> Streams:
    """Detect recurring streams in the ``lookback`` days ending at each user's ``as_of`` (int days,
    indexed by user code). ``window`` (days) only sets ``window_amount``: the stream's total inside the
    trailing window, used for the subscription share of spending. Pass an :class:`EventTable` to
    share the sorting between several lookbacks."""
    table = candidates if isinstance(candidates, EventTable) else build_events(candidates)
    ev = _events(table, as_of, lookback)
    if ev is None:
        return _empty()
    n_streams = ev.count.size
    cadence, gap, gap_stream = _cadence(ev)
    regular = cadence >= 0

    # Medians only for regular streams: the others are decided already.
    reg_events = np.flatnonzero(regular[ev.stream])
    median = group_median(ev.stream[reg_events], ev.amount[reg_events], n_streams)
    stable_ev = _within(ev.amount[reg_events], median[ev.stream[reg_events]])
    stable = regular & _all_per_group(stable_ev, ev.stream[reg_events], n_streams)
    change = _price_change(ev, regular & (ev.count >= 4))
    # A change is reported when it explains an otherwise unstable stream, or when it is a clean step
    # between two tight price levels (e.g. 15.49 → 17.99) inside an otherwise stable one.
    step = np.abs(change.after - change.before) > TIGHT_TOLERANCE * np.fmax(change.after, change.before)
    changed = change.stable & (~stable | (change.tight & step))
    detected = stable | changed
    ids = np.flatnonzero(detected)
    out = _stream_table(ev, ids, cadence, gap, gap_stream, median, changed, change)
    out = _add_activity(out, as_of, window, ev, detected)

    # Member transactions of detected streams, in (stream, day) order: a stream's events in the
    # lookback are contiguous in the event table, and so are their transactions.
    first_event = ev.selected[ev.stream_start[ids]]
    last_event = ev.selected[ev.stream_start[ids] + ev.count[ids] - 1]
    lo, hi = table.tx_start[first_event], table.tx_start[last_event + 1]
    tx_count = hi - lo
    out["tx_count"] = tx_count
    offsets = np.concatenate([[0], np.cumsum(tx_count)])
    positions = np.repeat(lo - offsets[:-1], tx_count) + np.arange(int(offsets[-1]))
    return Streams(out, table.tx_row[positions], offsets, table.labels)


def _stream_table(
    ev: _Events,
    ids: np.ndarray,
    cadence: np.ndarray,
    gap: np.ndarray,
    gap_stream: np.ndarray,
    median: np.ndarray,
    changed: np.ndarray,
    change: _PriceChange,
) -> pd.DataFrame:
    n_streams = ev.count.size
    count = ev.count[ids]
    start = ev.stream_start[ids]
    last = start + count - 1
    in_ids = np.zeros(n_streams, dtype=bool)
    in_ids[ids] = True
    gap_sel = np.flatnonzero(in_ids[gap_stream])
    median_gap = group_median(gap_stream[gap_sel], gap[gap_sel], n_streams)[ids]
    # gaps of a stream are contiguous: max |gap - median| per stream with one reduceat
    deviation = np.abs(gap[gap_sel] - median_gap.repeat(count - 1))
    gap_offsets = np.concatenate([[0], np.cumsum(count - 1)[:-1]])
    gap_max_dev = np.maximum.reduceat(deviation, gap_offsets) if gap_sel.size else np.zeros(0)
    sums, sq = _stream_sums(ev, ids)
    mean = sums / count
    cv = np.sqrt(np.maximum(sq / count - mean * mean, 0.0)) / np.where(mean > 0, mean, np.nan)
    is_changed = changed[ids]
    return pd.DataFrame(
        {
            "user": ev.user[ids],
            "key": ev.key[ids],
            "inflow": ev.inflow[ids],
            "count": count,
            "tx_count": np.zeros(ids.size, dtype=np.int64),
            "first_day": ev.day[start],
            "last_day": ev.day[last],
            "cadence": cadence[ids],
            "median_gap": median_gap,
            "gap_max_deviation": gap_max_dev.astype(float),
            "amount_cv": cv,
            "typical_amount": np.where(is_changed, change.after[ids], median[ids]),
            "average_amount": mean,
            "last_amount": ev.amount[last],
            "change_from": np.where(is_changed, change.before[ids], np.nan),
            "change_to": np.where(is_changed, change.after[ids], np.nan),
            "change_day": np.where(is_changed, change.day[ids], -1),
        }
    )


def _member_events(ev: _Events, ids: np.ndarray) -> np.ndarray:
    """Event positions of the given streams (contiguous runs), without scanning every event."""
    count = ev.count[ids]
    start = ev.stream_start[ids]
    return np.repeat(start - np.cumsum(count) + count, count) + np.arange(int(count.sum()))


def _stream_sums(ev: _Events, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares of the event amounts of each stream in ``ids``."""
    members = _member_events(ev, ids)
    amount = ev.amount[members]
    local = np.repeat(np.arange(ids.size), ev.count[ids])
    sums = group_sum(local, amount, ids.size)
    sq = group_sum(local, amount * amount, ids.size)
    return sums, sq


def _add_activity(
    table: pd.DataFrame, as_of: np.ndarray, window: int | None, ev: _Events, detected: np.ndarray
) -> pd.DataFrame:
    """Next expected date, active/tombstoned, recurring flag and the amount inside the window."""
    cadence = table["cadence"].to_numpy()
    users = table["user"].to_numpy()
    step = np.rint(table["median_gap"].to_numpy()).astype(np.int64)
    predicted = table["last_day"].to_numpy() + step
    grace = np.array([hi for _, hi in BANDS]) - np.rint(NOMINAL_DAYS).astype(np.int64) + 1
    table["predicted_next_day"] = predicted
    table["is_active"] = as_of[users] <= predicted + grace[cadence] if len(table) else np.zeros(0, bool)
    table["recurring"] = table["count"].to_numpy() >= MIN_RECURRING
    if window is None:
        table["window_amount"] = np.nan
        return table
    ids = np.flatnonzero(detected)
    members = _member_events(ev, ids)
    local = np.repeat(np.arange(ids.size), ev.count[ids])
    in_window = ev.day[members] > as_of[users[local]] - window
    table["window_amount"] = group_sum(local[in_window], ev.amount[members][in_window], ids.size)
    return table
