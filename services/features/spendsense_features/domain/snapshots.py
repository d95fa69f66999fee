"""The Parquet snapshots of a batch of users as read from the data bucket, decoded where they are analyzed.

The worker hands a batch to its analysis pool as these bodies (a few MB, compressed) rather than as
decoded tables: a chunk of 250 users was ~20 MB of Arrow buffers to pickle, pipe and unpickle, and the
decoding then runs on every core instead of beside the worker's event loop. Text columns are decoded
plain, not dictionary-encoded: on a chunk, a dictionary's values (all the chunk's merchant names) cost
the signal code more than the hashing they save (measured on the upload benchmark's 1,502 users in chunks
of 250: 1.5 s of CPU against 1.1 s, decoding included; the same reports).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from spendsense_shared.dataset import from_parquet, table_of_key, to_parquet


@dataclass(frozen=True)
class Snapshots:
    """Snapshot objects (``(key, Parquet body)``, each key once). With ``users_of`` (key → the users whose
    snapshot it is), only those users' rows of each object count: an object holds a chunk of users, of
    whom some may have a later snapshot elsewhere."""

    bodies: tuple[tuple[str, bytes], ...]
    users_of: Mapping[str, Collection[str]] | None = None

    @classmethod
    def of_tables(cls, tables: Mapping[str, pa.Table], prefix: str = "batch") -> Snapshots:
        """Tables as the snapshot objects that hold them (one per table, as a chunk's)."""
        return cls(tuple((f"{prefix}/{name}.parquet", to_parquet(t)) for name, t in tables.items()))

    def tables(self) -> dict[str, pa.Table]:
        """The objects decoded and concatenated per table (only ``users_of``'s rows when given)."""
        parts: dict[str, list[pa.Table]] = {}
        for key, body in self.bodies:
            table = from_parquet(body)
            if self.users_of is not None:
                wanted = pa.array(sorted(self.users_of.get(key, ())), type=pa.string())
                table = table.filter(pc.is_in(table["user_id"], value_set=wanted))
            parts.setdefault(table_of_key(key), []).append(table)
        return {name: pa.concat_tables(tables) for name, tables in parts.items()}
