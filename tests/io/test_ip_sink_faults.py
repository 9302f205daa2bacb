"""The IP landing sink under faults: a failing publish, a writer that stops, a full queue,
another collector racing for a new file; and who may read the files."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time

import pytest
from tests.api.test_ingest import hidden_files, landed

from lakehouse.io import ip_sink
from lakehouse.io.ip_sink import LandingSink, SinkUnavailable


def refuse_links(monkeypatch):
    def link(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")  # a FUSE or SMB landing folder

    monkeypatch.setattr(ip_sink.os, "link", link)


def test_a_publish_that_fails_answers_the_written_requests_and_the_writer_goes_on(tmp_path, monkeypatch):
    refuse_links(monkeypatch)
    sink = LandingSink(tmp_path, max_records_per_file=1)  # every request ends its slice
    try:
        for n in range(3):
            # Written and fsync'd: answered although the slice could not get its visible name.
            assert sink.submit([{"ip": f"1.1.1.{n}"}]).result(10) is None
        assert landed(tmp_path) == [] and len(hidden_files(tmp_path)) == 3
    finally:
        sink.close()
    # The next sink on the folder (here, with a working link) publishes what was left hidden.
    monkeypatch.undo()
    later = LandingSink(tmp_path)
    later.submit([{"ip": "2.2.2.2"}]).result(10)
    later.close()
    assert sorted(r["ip"] for r in landed(tmp_path)) == ["1.1.1.0", "1.1.1.1", "1.1.1.2", "2.2.2.2"]
    assert hidden_files(tmp_path) == []


def test_a_write_that_fails_is_a_503_for_its_requests_and_the_next_ones_land(tmp_path, monkeypatch):
    sink = LandingSink(tmp_path)
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(ip_sink.os, "fsync", fsync)
    try:
        with pytest.raises(SinkUnavailable, match="No space left on device"):
            sink.submit([{"ip": "1.1.1.1"}]).result(10)
        assert sink.submit([{"ip": "2.2.2.2"}]).result(10) is None
    finally:
        sink.close()
    assert "2.2.2.2" in [r["ip"] for r in landed(tmp_path)]


def test_a_writer_that_stops_fails_waiting_and_later_requests_at_once(tmp_path, monkeypatch):
    sink = LandingSink(tmp_path)
    entered, release = threading.Event(), threading.Event()

    def stuck_then_broken(batch):
        entered.set()
        release.wait(10)
        raise SystemExit("a bug in the writer")  # not an Exception: the writer loop ends

    monkeypatch.setattr(sink, "_commit", stuck_then_broken)
    first = sink.submit([{"ip": "1.1.1.1"}])
    assert entered.wait(10)
    waiting = sink.submit([{"ip": "2.2.2.2"}])
    release.set()
    with pytest.raises(SinkUnavailable, match="stopped"):
        waiting.result(10)
    with pytest.raises(SinkUnavailable, match="a bug in the writer"):
        first.result(10)
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match="the writer of landing folder .* stopped"):
        sink.submit([{"ip": "3.3.3.3"}])
    assert time.monotonic() - started < 1


def test_a_full_queue_refuses_at_once(tmp_path, monkeypatch):
    sink = LandingSink(tmp_path, max_pending=2)
    entered, release = threading.Event(), threading.Event()
    real_commit = sink._commit

    def slow(batch):
        entered.set()
        release.wait(10)
        real_commit(batch)

    monkeypatch.setattr(sink, "_commit", slow)
    try:
        futures = [sink.submit([{"ip": "1.1.1.1"}])]
        assert entered.wait(10)  # the writer holds the first; two more may wait
        futures += [sink.submit([{"ip": f"2.2.2.{n}"}]) for n in range(2)]
        with pytest.raises(SinkUnavailable, match="2 requests already wait"):
            sink.submit([{"ip": "3.3.3.3"}])
        release.set()
        assert [f.result(10) for f in futures] == [None, None, None]
    finally:
        release.set()
        sink.close()
    assert sorted(r["ip"] for r in landed(tmp_path)) == ["1.1.1.1", "2.2.2.0", "2.2.2.1"]


def test_a_new_file_unlinked_before_it_was_locked_is_given_up_for_another(tmp_path, monkeypatch):
    """Another collector on the folder may take a just-created, still unlocked file for an
    orphan and unlink it: the writer must not write into that lost file."""
    real_flock, raced = ip_sink.fcntl.flock, []

    def flock(fd, operation):
        if not raced:
            raced.append(fd)
            (hidden,) = hidden_files(tmp_path)
            hidden.unlink()  # what the other collector's orphan pass does
        return real_flock(fd, operation)

    monkeypatch.setattr(ip_sink.fcntl, "flock", flock)
    sink = LandingSink(tmp_path)
    sink.submit([{"ip": "8.8.8.8"}]).result(10)
    sink.close()
    assert raced and landed(tmp_path) == [{"ip": "8.8.8.8"}]


def test_landing_files_are_readable_by_their_owner_only(tmp_path):
    sink = LandingSink(tmp_path)
    sink.submit([{"ip": "8.8.8.8"}]).result(10)
    (hidden,) = hidden_files(tmp_path)
    assert stat.S_IMODE(hidden.stat().st_mode) == 0o600
    sink.close()
    (visible,) = tmp_path.rglob("ip-*.jsonl")
    assert stat.S_IMODE(visible.stat().st_mode) == 0o600
