"""Mirror benchmark: a remote topic read over SASL -> our topic, against a plain copy.

    python -m lakehouse_dev.bench_mirror [--records 200000] [--mechanism SCRAM-SHA-512]

Starts two brokers of its own under `.data/bench-mirror` on free loopback ports: the
"remote" with a SASL_PLAINTEXT listener, and ours. Fills the remote topic with small
seed-004 events (a tenth without an id, half with `ip` instead of `remote_ip`, so both
rewrites run), then drains it twice with `availableNow`, each time into a topic of its own
with a fresh checkpoint:
- the ceiling: Spark's Kafka source -> Kafka sink copying (key, value) unchanged, same
  SASL connection and sink options (what the engine does without our transform),
- the mirror: `jobs.mirror.run_mirror`, exactly what `lakehouse mirror` runs.
Prints records/s of each (rows over the summed micro-batch durations, and over the wall
time including the query's start) and the ratio. Measured, not asserted; stops its brokers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lakehouse.config import load_config, project_root
from lakehouse_dev.services.process import free_ports

PASSWORD = uuid.uuid4().hex
USER = "bench"


def events(n: int):
    """(key, value) of `n` small seed-004 events."""
    for i in range(n):
        ev: dict = {} if i % 10 == 0 else {"_id": f"{i:024x}"}
        ev["ip" if i % 2 == 0 else "remote_ip"] = f"81.2.{i % 250}.{i % 200}"
        ev |= {"device_id": f"dev-{i % 5000}", "product_id": str(100000 + i % 3000), "store_id": str(i % 20),
               "time_stamp": 1709290000 + i, "collection": "view_product_detail"}  # fmt: skip
        yield None, json.dumps(ev).encode()


def drained(start) -> tuple[int, float, float]:
    """(rows, seconds in micro-batches, wall seconds from the start) of the availableNow
    query `start()` starts: the wall figure includes planning and the first fetch."""
    from lakehouse.jobs.stream_progress import batch_progress

    started = time.monotonic()
    query = start()
    query.awaitTermination()
    wall = time.monotonic() - started
    if query.exception() is not None:
        raise RuntimeError(f"bench query failed: {query.exception()}")
    batches = [b for b in (batch_progress(p) for p in query.recentProgress) if b is not None]
    return sum(b.rows for b in batches), sum(b.seconds for b in batches), wall


def main(argv: list[str] | None = None) -> int:
    from lakehouse.io import kafka as kafka_io
    from lakehouse.jobs import mirror
    from lakehouse.session import get_spark
    from lakehouse_dev.services import kafka

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--mechanism", default="SCRAM-SHA-512", choices=("PLAIN", "SCRAM-SHA-512"))
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args(argv)

    base = project_root() / ".data" / "bench-mirror"
    shutil.rmtree(base, ignore_errors=True)
    remote_port, remote_ctrl, sasl_port, local_port, local_ctrl = free_ports(5)
    work = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    spark = None
    try:
        remote = kafka.start(base / "remote", port=remote_port, controller_port=remote_ctrl,
                             topics={"views": args.partitions}, sasl=kafka.SaslListener(sasl_port, {USER: PASSWORD}))  # fmt: skip
        local = kafka.start(base / "local", port=local_port, controller_port=local_ctrl,
                            topics={"copy": args.partitions, "mirrored": args.partitions})  # fmt: skip
        stats = kafka_io.send_paced(remote.bootstrap, "views", events(args.records), None)
        assert stats.errors == 0, stats
        print(f"remote topic: {args.records:,} events produced in {stats.seconds:.1f}s", flush=True)

        config = load_config(profile="local", environ={}).with_warehouse(str(work / "warehouse"))
        spark = get_spark(config, app_name="lakehouse-bench-mirror")
        auth = kafka_io.KafkaAuth("SASL_PLAINTEXT", args.mechanism, USER, PASSWORD)
        cluster, _partitions = kafka_io.check_cluster(remote.sasl_bootstrap, auth, "views")

        def spec(to_topic: str) -> mirror.MirrorSpec:
            return mirror.MirrorSpec(
                from_bootstrap=remote.sasl_bootstrap, from_topic="views", auth=auth, cluster=cluster,
                to_bootstrap=local.bootstrap, to_topic=to_topic, checkpoint=str(work / f"cp-{to_topic}"),
                starting_offsets="earliest", fail_on_data_loss=True,
                max_offsets_per_trigger=config.kafka.max_offsets_per_trigger or None, trigger="availableNow",
            )  # fmt: skip

        def copy(df, _cluster):
            return df.select("key", "value")

        results = {
            "copy (ceiling)": drained(lambda: mirror.start_mirror(spark, spec("copy"), copy)),
            "mirror": drained(lambda: mirror.start_mirror(spark, spec("mirrored"))),
        }
        for name, topic in (("copy (ceiling)", "copy"), ("mirror", "mirrored")):
            landed = sum(kafka_io.latest_offsets(local.bootstrap, topic).values())
            rows, batch_s, wall = results[name]
            print(f"{name:15s} {rows:,} rows ({landed:,} in our topic): {rows / batch_s:,.0f} records/s in batches "
                  f"({batch_s:.1f}s), {rows / wall:,.0f} records/s wall ({wall:.1f}s)", flush=True)  # fmt: skip
        ratio = (results["mirror"][0] / results["mirror"][1]) / (results["copy (ceiling)"][0] / results["copy (ceiling)"][1])
        print(f"mirror / ceiling: {ratio:.2f} ({args.mechanism}, {args.partitions} partitions, {spark.sparkContext.master})")
    finally:
        if spark is not None:
            spark.stop()
        kafka.stop(base / "remote")
        kafka.stop(base / "local")
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
