"""The in-memory dataset the signal code computes from: three pandas DataFrames with the columns of the
normalized schema in :mod:`spendsense_shared.dataset` (Plaid sign convention: positive = money out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from spendsense_shared.dataset import TABLES

__all__ = ["Dataset"]


def _kind(field_type: pa.DataType) -> str:
    if pa.types.is_date(field_type):
        return "date"
    if pa.types.is_floating(field_type):
        return "float"
    if pa.types.is_boolean(field_type):
        return "bool"
    return "string"


# table name -> column name -> "string" | "float" | "bool" | "date"
COLUMNS: dict[str, dict[str, str]] = {
    name: {f.name: _kind(f.type) for f in schema} for name, schema in TABLES.items()
}


def _normalize_column(values: pd.Series, kind: str) -> pd.Series:
    """Coerce one column to the dtype the signal code expects, leaving it alone when it already fits
    (so a large, already-typed frame costs nothing)."""
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return values
        return pd.to_datetime(values, errors="coerce")
    if kind == "float":
        if pd.api.types.is_float_dtype(values.dtype):
            return values
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == "bool":
        if pd.api.types.is_bool_dtype(values.dtype):
            return values
        # A missing flag means "not set" (e.g. pending unknown → posted, is_overdue unknown → False).
        return values.astype("boolean").fillna(False).astype(bool)
    return values


def _empty_column(kind: str, length: int) -> pd.Series:
    dtypes = {"date": "datetime64[ms]", "float": "float64", "bool": "bool", "string": "str"}
    if kind == "bool":
        return pd.Series([False] * length, dtype="bool")
    return pd.Series([None] * length, dtype=dtypes[kind])


def _normalize_frame(frame: pd.DataFrame | None, table: str) -> pd.DataFrame:
    columns = COLUMNS[table]
    frame = pd.DataFrame() if frame is None else frame
    out: dict[str, pd.Series] = {}
    for name, kind in columns.items():
        if name in frame.columns:
            out[name] = _normalize_column(frame[name].reset_index(drop=True), kind)
        else:
            out[name] = _empty_column(kind, len(frame))
    return pd.DataFrame(out, copy=False)


@dataclass(frozen=True)
class Dataset:
    """Accounts, transactions and credit liabilities of one or many users.

    Frames may be built by hand with only some of the columns: missing ones are added as nulls and
    dates/amounts are coerced, so every ``Dataset`` has the full schema.
    """

    accounts: pd.DataFrame = field(default_factory=pd.DataFrame)
    transactions: pd.DataFrame = field(default_factory=pd.DataFrame)
    credit_liabilities: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        # Frozen for safety, normalized once here so downstream code can rely on the schema.
        object.__setattr__(self, "accounts", _normalize_frame(self.accounts, "accounts"))
        object.__setattr__(self, "transactions", _normalize_frame(self.transactions, "transactions"))
        object.__setattr__(
            self, "credit_liabilities", _normalize_frame(self.credit_liabilities, "credit_liabilities")
        )

    @classmethod
    def from_arrow(cls, tables: Mapping[str, pa.Table]) -> Dataset:
        """Build from Arrow tables keyed ``accounts``/``transactions``/``credit_liabilities`` (as read
        from the Parquet snapshot). Absent tables are empty; unknown tables are rejected.

        Dictionary-encoded string columns become pandas categoricals, whose integer codes the signal
        code uses as they are: on a large batch (``bench/features.py``: 10,000 users) that saves re-hashing
        millions of strings. The worker reads its chunks of a few hundred users plain, which is faster
        there (see :mod:`spendsense_features.domain.snapshots`).
        """
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown dataset tables: {sorted(unknown)} (expected {sorted(TABLES)})")
        frames = {
            name: table.to_pandas(date_as_object=False, self_destruct=False) for name, table in tables.items()
        }
        return cls(**frames)

    @classmethod
    def concat(cls, parts: Iterable[Dataset]) -> Dataset:
        parts = list(parts)
        if not parts:
            return cls()
        return cls(
            **{
                name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
                for name in ("accounts", "transactions", "credit_liabilities")
            }
        )

    def user_ids(self) -> list[str]:
        """Every user that has accounts or transactions, sorted."""
        ids = pd.concat([self.accounts["user_id"], self.transactions["user_id"]]).dropna().unique()
        return sorted(str(u) for u in ids)

    def for_users(self, user_ids: Iterable[str]) -> Dataset:
        wanted = list(user_ids)
        return Dataset(
            **{
                name: frame[frame["user_id"].isin(wanted)]
                for name, frame in (
                    ("accounts", self.accounts),
                    ("transactions", self.transactions),
                    ("credit_liabilities", self.credit_liabilities),
                )
            }
        )
