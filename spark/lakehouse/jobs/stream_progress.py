"""What a Structured Streaming progress report says about one micro-batch.

Pure parsing of the dicts `StreamingQuery.recentProgress` returns: the stream logs one
line per batch from it (rows, rate, where the time went, lag) and keeps its end offsets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# progress `durationMs` keys -> what they measure
STEPS = (("addBatch", "write"), ("walCommit", "offsets log"), ("commitOffsets", "commit log"), ("latestOffset", "kafka"))


@dataclass(frozen=True)
class BatchProgress:
    """One finished micro-batch: its id, rows, seconds, end offsets, lag and time per step."""

    batch_id: int
    rows: int
    seconds: float
    end_offsets: dict[int, int]
    lag: int
    steps: dict[str, float]
    # Offsets not read yet per partition (the latest offset minus the batch's end).
    partition_lag: dict[int, int] = field(default_factory=dict)

    def describe(self, dataset: str) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        parts = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.steps.items())
        return f"{dataset} batch {self.batch_id}: {self.rows} rows in {self.seconds:.2f}s ({rate:.0f} rows/s; {parts}), lag {self.lag} offsets"


def offsets_of(value) -> dict[int, int]:
    """Offsets of the (single) topic in a report's `startOffset`/`endOffset`/`latestOffset`."""
    if not value:
        return {}
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        return {}  # e.g. "null" in the first batch after a restart
    return {int(p): int(o) for per_topic in parsed.values() if isinstance(per_topic, dict) for p, o in per_topic.items()}


def batch_progress(progress: dict) -> BatchProgress | None:
    """The batch a progress report describes; None for an idle report (no batch ran)."""
    durations = progress.get("durationMs") or {}
    if "addBatch" not in durations:
        return None
    source = (progress.get("sources") or [{}])[0]
    end = offsets_of(source.get("endOffset"))
    latest = offsets_of(source.get("latestOffset"))
    partition_lag = {p: max(0, latest.get(p, o) - o) for p, o in end.items()}
    return BatchProgress(
        batch_id=int(progress["batchId"]),
        rows=int(progress.get("numInputRows") or 0),
        seconds=(durations.get("triggerExecution") or 0) / 1000,
        end_offsets=end,
        lag=sum(partition_lag.values()),
        steps={name: durations[key] / 1000 for key, name in STEPS if durations.get(key)},
        partition_lag=partition_lag,
    )
