"""The instance's event log: Dagster's SQLite storage, with one planned event per asset for a run over a
range of partitions instead of one per partition.

Every event costs a SQLite transaction in the run's database and another in the index, so a run over
62 days wrote 62 `ASSET_MATERIALIZATION_PLANNED` events per asset before it did any work: half of the
events Dagster writes for a day (the other half are the materialisations). Dagster stores the run's
partition range in one planned event where the storage says it can (the switch Dagster reads from its
environment, here a property of the storage). The one thing lost: partitions of a run that fails show
as missing, not failed, in the UI.
"""

from __future__ import annotations

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData


class RangeEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` that records a run's planned partitions as one range per asset."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> RangeEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True
