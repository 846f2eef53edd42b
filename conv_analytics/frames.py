"""Typed pandas frames of the platform's tables, for a team's own assets downstream of ours.

An input annotated with one of these types is loaded by the lake IO manager as a pandas DataFrame
(an unannotated or pyarrow-annotated one stays a pyarrow Table), and dagster-pandas checks its
columns and types on the way in: a column renamed upstream fails the downstream step, with the
column named, instead of producing a wrong chart.

    @dg.asset
    def escalations_by_channel(daily_rollups: RollupsFrame) -> pd.DataFrame: ...
"""

from __future__ import annotations

import pyarrow as pa
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type

from conv_analytics.schemas import CONVERSATION_CATEGORIES, ROLLUPS


def pandas_columns(schema: pa.Schema) -> list[PandasColumn]:
    """The dagster-pandas column constraints of an Arrow schema as `Table.to_pandas()` renders it."""
    columns = []
    for field in schema:
        required = not field.nullable
        kind = field.type
        if pa.types.is_integer(kind) and required:  # nullable integers become floats in pandas
            columns.append(PandasColumn.integer_column(field.name, non_nullable=True))
        elif pa.types.is_floating(kind):
            columns.append(
                PandasColumn.float_column(field.name, non_nullable=required, ignore_missing_vals=not required)
            )
        elif pa.types.is_boolean(kind) and required:
            columns.append(PandasColumn.boolean_column(field.name, non_nullable=True))
        elif pa.types.is_timestamp(kind):
            columns.append(PandasColumn.datetime_column(field.name, non_nullable=required, tz=str(kind.tz)))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns.append(PandasColumn.string_column(field.name, non_nullable=required))
        else:  # dates, lists and structs arrive as Python objects: only their presence is checked
            columns.append(PandasColumn.exists(field.name, non_nullable=required))
    return columns


RollupsFrame = create_dagster_pandas_dataframe_type(
    name="RollupsFrame",
    description="Daily, weekly or monthly rollups: one row per period, dimension and value.",
    columns=pandas_columns(ROLLUPS),
)

ConversationCategoriesFrame = create_dagster_pandas_dataframe_type(
    name="ConversationCategoriesFrame",
    description="One row per conversation: topic, primary intent, sentiment, response times, outcome.",
    columns=pandas_columns(CONVERSATION_CATEGORIES),
)
