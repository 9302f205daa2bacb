"""Records of a remote product-views topic -> the records our own product-views topic carries.

Seed 004 forwards the `product_views` topic of a remote cluster to a local one. Its events
are Glamira-style documents that mostly read as they are by silver's parser
(`feeds/product_views/parse.py`); the mirror changes only what would otherwise be read
wrongly, and only in the records concerned:

* `ip` becomes `remote_ip` (our contract's name) when the event has no usable `remote_ip`.
  Renamed, not copied: a second copy would land in silver's `extra`, out of reach of the
  IP anonymisation that applies to `remote_ip`.
* An event without any id (`_id`, `{"$oid": ...}` and `event_id` all missing or blank) gets
  `event_id` = sha-256 of its place in the REMOTE source,
  `kafka:<cluster>/<topic>:<partition>:<offset>`. Silver would otherwise identify it by its
  place in OUR topic, and the mirror delivers at least once: an event forwarded twice (a
  crash between the write and the checkpoint) sits at two local offsets and would count
  twice. With the remote place both copies are one event, which silver keeps once. (`/`
  cannot occur in a topic name, so this never equals silver's own `kafka:<topic>:...`.)

Everything else passes byte for byte: events that need neither change, records that are no
JSON object or no valid UTF-8 (silver quarantines them with their reason: the mirror
neither drops nor repairs anything). The key is the remote key, else the event's
`device_id` (as `io.kafka.keyed` keys product views), else none.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.feeds.product_views.parse import EVENT_SCHEMA
from lakehouse.transforms.records import require_columns

# What Spark's Kafka source gives that the mirror reads.
SOURCE_COLUMNS = ("key", "value", "topic", "partition", "offset")


def _blank_to_null(col: Column) -> Column:
    return F.when(F.trim(col) != "", col)


def remote_place(cluster: str) -> Column:
    """`kafka:<cluster>/<topic>:<partition>:<offset>`: where a record sits in the remote source."""
    return F.concat(
        F.lit(f"kafka:{cluster}/"), F.col("topic"), F.lit(":"),
        F.col("partition").cast("string"), F.lit(":"), F.col("offset").cast("string"),
    )  # fmt: skip


def with_parsed_event(df: DataFrame) -> DataFrame:
    """Add `_fields` (the known fields as text, as silver reads them) and `_members` (every
    member as it is: numbers, nested objects, duplicate names) of the `value` JSON object;
    both null when it is none. Parsed once here: the value is rebuilt from them."""
    text = F.col("value").cast("string")
    return df.withColumns({"_fields": F.from_json(text, EVENT_SCHEMA), "_members": F.from_json(text, "map<string,variant>")})


def with_changes(df: DataFrame) -> DataFrame:
    """Add `_add_id` (the event has no id) and `_rename_ip` (`ip` must become `remote_ip`),
    from `with_parsed_event`'s columns: computed once, not once per member below."""
    fields, members = F.col("_fields"), F.col("_members")
    oid = F.get_json_object(fields["_id"], "$['$oid']")
    has_id = F.coalesce(oid, _blank_to_null(fields["_id"]), _blank_to_null(fields["event_id"])).isNotNull()
    rename_ip = members["ip"].isNotNull() & _blank_to_null(fields["remote_ip"]).isNull()
    return df.withColumns({"_add_id": F.coalesce(~has_id, F.lit(False)), "_rename_ip": F.coalesce(rename_ip, F.lit(False))})


def normalised_value(value: Column, members: Column, add_id: Column, rename_ip: Column, place: Column) -> Column:
    """`value` (bytes of a seed-004 event; `members` its parse, `add_id` / `rename_ip` what
    it needs, see `with_parsed_event` and `with_changes`) as silver reads it right: `ip`
    renamed to `remote_ip`, `event_id` from `place` when it has no id (see the module doc);
    other records unchanged, byte for byte."""
    added = F.to_json(
        F.struct(
            F.when(add_id, F.sha2(place, 256)).alias("event_id"),
            F.when(rename_ip, members["ip"]).alias("remote_ip"),
        )
    )
    kept = F.to_json(
        F.map_filter(
            members,
            lambda k, _v: ~((add_id & (k == "event_id")) | (rename_ip & ((k == "ip") | (k == "remote_ip")))),
        )
    )
    # {"event_id":..,"remote_ip":..} + {the kept members} -> one object; `,}` only where
    # nothing was kept (no JSON value ends with a comma).
    spliced = F.regexp_replace(
        F.concat(F.regexp_replace(added, r"\}$", ""), F.lit(","), F.regexp_replace(kept, r"^\{", "")), r",\}$", "}"
    )
    changes = F.is_valid_utf8(value) & members.isNotNull() & (add_id | rename_ip)
    return F.when(F.coalesce(changes, F.lit(False)), spliced.cast("binary")).otherwise(value.cast("binary"))


def mirror_key(key: Column, fields: Column) -> Column:
    """The record's key: the remote one, else the event's `device_id`, else null."""
    return F.coalesce(key.cast("binary"), fields["device_id"].cast("binary"))


def mirror_records(df: DataFrame, cluster: str) -> DataFrame:
    """Rows of Spark's Kafka source on the remote topic -> (`key`, `value`) rows for the
    Kafka sink on ours; `cluster` names the remote cluster (its cluster id) in event ids."""
    require_columns(df, SOURCE_COLUMNS, "Kafka source rows")
    return (
        df.transform(with_parsed_event)
        .transform(with_changes)
        .select(
            mirror_key(F.col("key"), F.col("_fields")).alias("key"),
            normalised_value(F.col("value"), F.col("_members"), F.col("_add_id"), F.col("_rename_ip"), remote_place(cluster)).alias("value"),
        )
    )
