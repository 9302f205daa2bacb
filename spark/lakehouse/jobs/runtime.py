"""What every job shares: its command line, logging, config, the session, and its run record.

A job module is a `main(argv)` that hands `run_job` its name, its own arguments and a
body `(spark, config, run, args) -> exit code | None`: the skeleton parses the arguments,
sets up logging, reads the config (failing before anything is written when it is
wrong), builds the session, runs the body and records the run in `_meta/job_runs`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config import PROFILES, Config, load_config
from lakehouse.io import delta

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("job", T.StringType()),
        T.StructField("started_at", T.TimestampType()),
        T.StructField("finished_at", T.TimestampType()),
        T.StructField("seconds", T.DoubleType()),
        T.StructField("counts", T.MapType(T.StringType(), T.LongType())),
        T.StructField("status", T.StringType()),
    ]
)


@contextmanager
def timed(log: logging.Logger, name: str) -> Iterator[None]:
    """Log (debug level) how long a step took: `-v` shows where a job's time goes."""
    started = time.time()
    yield
    log.debug("  %s: %.2fs", name, time.time() - started)


def in_parallel(tasks: dict[str, Callable[[], None]], threads: int) -> None:
    """Run independent steps (one feed's gold, one gold table) on `threads` driver threads.

    Each step submits its own Spark jobs; on a small batch most of a step's time is the
    driver's (planning, Delta log reads, commits), which another step's jobs can use the
    cores during. Every step runs to its end; the first failure (in `tasks` order) is raised
    after all have ended, the others logged, so no step is left half done in the background.
    """
    if threads <= 1 or len(tasks) <= 1:
        for step in tasks.values():
            step()
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(tasks)), thread_name_prefix="lakehouse") as pool:
        futures = {name: pool.submit(step) for name, step in tasks.items()}
    failures = [(name, f.exception()) for name, f in futures.items() if f.exception() is not None]
    for name, error in failures[1:]:
        logging.getLogger("lakehouse").error("%s failed too: %s", name, error)
    if failures:
        raise failures[0][1]


def setup_logging(verbose: bool = False) -> None:
    """Job logs on stderr, one line each, timestamped."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every job takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--warehouse", help="warehouse dir or s3a:// url (default: from conf/lakehouse.yaml)")
    parser.add_argument("--profile", choices=PROFILES, help="config profile (default: $LAKEHOUSE_PROFILE or local)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (with each step's time)")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """The config for a job's parsed arguments (--profile, --warehouse applied)."""
    config = load_config(profile=args.profile)
    return config.with_warehouse(args.warehouse) if args.warehouse else config


_counts_lock = threading.Lock()


@dataclass
class JobRun:
    """Counts of one job run: logged as it goes, printed and recorded at the end."""

    job: str
    counts: dict[str, int] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.time)
    seconds: float | None = None

    def add(self, **counts: int) -> None:
        with _counts_lock:  # steps of one run may add from several threads
            for key, value in counts.items():
                self.counts[key] = self.counts.get(key, 0) + int(value or 0)

    def summary(self) -> str:
        parts = ", ".join(f"{k}={v:,}" for k, v in self.counts.items())
        return f"{self.job}: {parts or 'nothing to do'} ({time.time() - self.started:.1f}s)"

    def record(self, spark: SparkSession, config: Config, status: str = "ok") -> None:
        """Append this run to `<warehouse>/_meta/job_runs` and print its summary."""
        self.seconds = time.time() - self.started
        now = datetime.now(UTC).replace(tzinfo=None)
        start = datetime.fromtimestamp(self.started, UTC).replace(tzinfo=None)
        row = [(self.run_id, self.job, start, now, self.seconds, dict(self.counts), status)]
        delta.append(spark.createDataFrame(row, RUNS_SCHEMA), config.table_path("_meta", "job_runs"), merge_schema=True)
        print(self.summary(), flush=True)


def get_session(config: Config, job: str) -> SparkSession:
    """The shared session factory, named after the job."""
    from lakehouse.session import get_spark

    return get_spark(config, app_name=f"lakehouse-{job}")


Body = Callable[[SparkSession, Config, JobRun, argparse.Namespace], "int | None"]


def run_job(
    name: str,
    description: str,
    body: Body,
    argv: list[str] | None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    check: Callable[[argparse.Namespace], str | None] = lambda _args: None,
    record: bool = True,
) -> int:
    """The skeleton of every job's `main`: arguments, logging, config, session, body, run record.

    `arguments` adds the job's own options; `check` returns an error message for arguments
    that do not go together (reported before anything starts); `record=False` for jobs
    that record nothing (a report) or record their stages themselves (the batch).
    """
    parser = base_parser(f"lakehouse {name}", description)
    if arguments:
        arguments(parser)
    args = parser.parse_args(argv)
    if problem := check(args):
        parser.error(problem)
    setup_logging(args.verbose)
    config = config_from_args(args)
    spark = get_session(config, name)
    run = JobRun(name)
    try:
        code = body(spark, config, run, args) or 0
    except Exception:
        if record:
            try:
                run.record(spark, config, status="failed")
            except Exception:  # the failure being raised matters more than its record
                logging.getLogger("lakehouse").exception("could not record the failed run of %s", name)
        raise
    if record:
        run.record(spark, config, status="ok" if code == 0 else f"exit {code}")
    return code
