"""Reading a micro-batch out of a Structured Streaming progress report (as Spark writes them)."""

from lakehouse.jobs.stream_progress import batch_progress, offsets_of

REPORT = {
    "batchId": 7,
    "numInputRows": 1500,
    "durationMs": {"addBatch": 1200, "walCommit": 40, "commitOffsets": 35, "latestOffset": 5, "triggerExecution": 1500},
    "sources": [
        {
            "startOffset": {"access_logs": {"0": 100, "1": 200}},
            "endOffset": '{"access_logs":{"0":900,"1":900}}',
            "latestOffset": {"access_logs": {"0": 1000, "1": 900}},
        }
    ],
}


def test_a_batch_report_gives_rows_time_offsets_and_lag():
    batch = batch_progress(REPORT)
    assert (batch.batch_id, batch.rows, batch.seconds, batch.end_offsets, batch.lag) == (7, 1500, 1.5, {0: 900, 1: 900}, 100)
    assert batch.steps == {"write": 1.2, "offsets log": 0.04, "commit log": 0.035, "kafka": 0.005}
    assert batch.describe("access_logs") == (
        "access_logs batch 7: 1500 rows in 1.50s (1000 rows/s; write 1.20s, offsets log 0.04s, "
        "commit log 0.04s, kafka 0.01s), lag 100 offsets"
    )


def test_an_idle_report_is_no_batch_and_null_offsets_are_none():
    assert batch_progress({"batchId": 8, "durationMs": {"latestOffset": 3, "triggerExecution": 3}}) is None
    assert offsets_of("null") == {} and offsets_of(None) == {}


class _FinishingQuery:
    """A query whose last batch finishes, and which stops, right after it was polled: its
    report appears between the read of recentProgress and the read of isActive."""

    def __init__(self, last_report):
        self._reports, self._last = [], last_report

    @property
    def recentProgress(self):
        return list(self._reports)

    @property
    def isActive(self):
        self._reports.append(self._last)
        return False

    def exception(self):
        return None


def test_a_batch_that_finishes_as_the_query_stops_is_counted():
    from lakehouse.jobs.runtime import JobRun
    from lakehouse.jobs.stream_kafka import StreamOptions, poll
    from lakehouse.jobs.stream_query import DatasetStream

    stream = DatasetStream("access_logs", "t", "table", "checkpoint", query=_FinishingQuery(REPORT))
    run = JobRun("stream")
    poll(None, None, stream, StreamOptions(("access_logs",), "availableNow", None), run, stop=None)
    assert stream.done and (stream.rows, stream.batches) == (1500, 1)
    assert run.counts == {"access_logs_rows": 1500, "access_logs_batches": 1}
