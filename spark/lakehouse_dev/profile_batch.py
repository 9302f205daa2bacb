"""Where the demo batch's time goes: every Spark job of each stage, from the Spark UI.

    make profile                                   # the demo's inputs, a throwaway warehouse
    python -m lakehouse_dev.profile_batch [--jobs] [--warehouse DIR]

Runs `run_batch` on the demo's samples (the five feeds of `make demo`, with the demo's
access-log format) in one session with the Spark UI on, then reads the UI's REST API
(`/api/v1/applications/<id>/jobs`) and prints, per stage, its wall time, how many Spark
jobs it ran, how long those jobs took together, and the time no job was running (the
driver: planning, Delta log reads and commits, streaming-query start and stop, Python).
`--jobs` lists each job with its duration, task count and call site. On a sample of a few
thousand lines almost all of a stage is fixed cost: this is the list to cut from.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from lakehouse.config import load_config, project_root
from lakehouse.feeds import NAMES
from lakehouse.jobs import batch
from lakehouse.session import get_spark
from lakehouse_dev.samples import LOG_FORMATS
from lakehouse_dev.services.process import free_ports

DEMO_INPUTS = {
    "access_logs": "access_response_time.log",
    "product_views": "product_views.jsonl",
    "web_events": "web_events.jsonl",
    "api_ticks": "api_ticks.jsonl",
    "ip_events": "ip_events.jsonl",
}


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%Z").timestamp()


def _busy(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval (jobs of one stage may overlap)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dev.profile_batch", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", action="store_true", help="list every Spark job of each stage")
    parser.add_argument("--warehouse", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args(argv)

    samples = project_root() / "sample_logs"
    work = args.warehouse or Path(tempfile.mkdtemp(prefix="lakehouse-profile-"))
    shutil.rmtree(work, ignore_errors=True)
    config = load_config(profile="local", overrides={"access_logs": {"log_format": LOG_FORMATS["response_time"]}}).with_warehouse(str(work))
    (port,) = free_ports()
    spark = get_spark(config, "profile", {"spark.ui.enabled": "true", "spark.ui.port": str(port)})

    windows: list[tuple[str, float, float]] = []  # stage, start, end: from JobRun's own clock
    record = batch.JobRun.record

    def timed_record(self, spark_, config_, status="ok"):
        windows.append((self.job, self.started, time.time()))
        record(self, spark_, config_, status)

    batch.JobRun.record = timed_record
    started = time.time()
    try:
        inputs = {name: str(samples / DEMO_INPUTS[name]) for name in NAMES if name in DEMO_INPUTS}
        batch.run_batch(spark, config, **inputs)
    finally:
        batch.JobRun.record = record
    total = time.time() - started

    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/applications/{app}/jobs") as answer:
        jobs = [j for j in json.load(answer) if "completionTime" in j]
    print(f"demo batch in one session: {total:.1f} s, {len(jobs)} Spark jobs")
    print(f"{'stage':28} {'wall s':>7} {'jobs':>5} {'in jobs s':>9} {'outside s':>9}")
    for stage, start, end in windows:
        mine = [j for j in jobs if start <= _seconds(j["submissionTime"]) <= end]
        spans = [(_seconds(j["submissionTime"]), _seconds(j["completionTime"])) for j in mine]
        busy = _busy(spans)
        print(f"{stage:28} {end - start:7.1f} {len(mine):5d} {busy:9.1f} {end - start - busy:9.1f}")
        if args.jobs:
            for job, (a, b) in sorted(zip(mine, spans, strict=True), key=lambda pair: pair[0]["jobId"]):
                print(f"    {job['jobId']:5d} {b - a:6.2f}s {job['numTasks']:4d} tasks  {job['name'][:100]}")
    spark.stop()
    if args.warehouse is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
