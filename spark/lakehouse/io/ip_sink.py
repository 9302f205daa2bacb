"""Where the IP collector of `lakehouse serve` puts accepted IPs: files or a Kafka topic.

No Spark here. A record is one JSON object (`ip`, `received_at`, `request_id`) encoded as
one line. `submit(records)` returns a future that completes once every record is durable
(fsync'd to disk, or acknowledged by Kafka with acks=all), or fails with `SinkUnavailable`
saying why: the HTTP answer waits for it, so a 202 means no accepted IP can be lost.

- `LandingSink`: JSON lines in `<folder>/<UTC date>/ip-<UTC time>-<pid>-<n>.jsonl`, for
  the batch ingest (embedded default), a file per time slice (`roll_seconds`, a minute by
  default: not a file per request). The slice being written has a hidden name (the file
  ingest skips those), is appended to and fsync'd before any request it holds is answered,
  and is renamed to its visible name when the slice ends; it is never written again after
  (files are identified by their content's first bytes). One writer thread takes every
  request waiting at that moment in one write and one fsync (group commit).
- `KafkaSink`: each record one message of the topic, keyed by the IP (confluent-kafka,
  acks=all, idempotent), as `io/kafka.py` produces.

Delivery is at least once: a failure after part of a request was written (a Kafka timeout
whose record did reach the broker) answers 503, and the client's retry repeats those IPs.

The landing writer never dies silently: an error while writing or publishing fails the
requests it holds (or answers them, when their records were already fsync'd), and the
writer goes on; should it stop all the same, every waiting and later request fails at once
(503) instead of waiting out its timeout. At most `max_pending` requests wait for it.
Landing files are readable by their owner only (IP addresses are personal data).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from lakehouse.config import Config

log = logging.getLogger("lakehouse.ip_sink")

Record = Mapping[str, str]


class SinkUnavailable(RuntimeError):
    """The records could not be made durable; the message says why, in one line."""


class IpSink(Protocol):
    """Takes accepted IP records; `submit`'s future completes once they are durable."""

    def describe(self) -> str: ...

    def submit(self, records: Sequence[Record]) -> Future[None]: ...

    def close(self) -> None: ...


def encode(record: Record) -> bytes:
    """One record as one compact JSON line, without its newline."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def sink_from(config: Config) -> IpSink:
    """The sink `ip_events.sink` names: the Kafka topic `kafka.topics.ip_events`, or the landing folder."""
    events = config.ip_events
    if events.sink == "kafka":
        return KafkaSink(
            config.kafka.bootstrap_servers,
            config.kafka.topics["ip_events"],
            events.delivery_timeout_seconds,
        )
    return LandingSink(events.landing, roll_seconds=events.roll_seconds)


class LandingSink:
    """JSON lines under `folder`, a file per time slice (see the module doc).

    The open slice is `<date>/.ip-<UTC time>-<pid>-<n>.jsonl.open`: hidden (the batch ingest
    skips it), appended to and fsync'd once per group of waiting requests, and held under an
    exclusive `flock` while its writer lives. After `roll_seconds` (or `max_records_per_file`
    records, or at `close`) it is renamed to its visible name, never to be written again. A
    slice left hidden by a writer that died is published by the next sink on the folder,
    minus a torn last line (a write cut short, never acknowledged).
    """

    def __init__(
        self, folder: Path | str, roll_seconds: float = 60.0, max_records_per_file: int = 100_000,
        max_pending: int = 10_000,
    ) -> None:
        self.folder = Path(folder)
        self.roll_seconds = roll_seconds
        self.max_records_per_file = max_records_per_file
        self._queue: queue.Queue[tuple[list[bytes], Future[None]]] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = threading.Event()
        self._dead: str | None = None  # why the writer stopped, if it did
        self._seq = 0
        self._slice: _Slice | None = None

    def describe(self) -> str:
        return f"landing folder {self.folder}"

    def submit(self, records: Sequence[Record]) -> Future[None]:
        future: Future[None] = Future()
        if not records:
            future.set_result(None)
            return future
        lines = [encode(r) for r in records]
        with self._lock:
            if self._closed:
                raise SinkUnavailable(f"{self.describe()} is closed")
            if self._dead is not None:
                raise SinkUnavailable(self._dead)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ip-landing-writer", daemon=True
                )
                self._thread.start()
            try:
                self._queue.put_nowait((lines, future))
            except queue.Full:
                raise SinkUnavailable(
                    f"{self.describe()}: {self._queue.maxsize} requests already wait for the writer"
                ) from None
        return future

    def close(self) -> None:
        """Write what is queued, publish the open slice, stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._stopping.set()
        if thread is not None:
            thread.join()

    # How often an idle writer looks whether it is asked to stop.
    _IDLE_WAKE = 0.5

    def _run(self) -> None:
        try:
            self._write_until_closed()
        except BaseException as error:  # a bug: no request may wait for a writer that is gone
            log.exception("the IP landing writer of %s stopped", self.folder)
            with self._lock:
                self._dead = f"the writer of {self.describe()} stopped: {error!r}"
            self._fail_waiting(SinkUnavailable(self._dead))

    def _fail_waiting(self, failure: SinkUnavailable) -> None:
        while True:
            try:
                _, future = self._queue.get_nowait()
            except queue.Empty:
                return
            _settle(future, failure)

    def _write_until_closed(self) -> None:
        try:
            publish_orphans(self.folder)
        except OSError as error:
            log.warning("cannot publish the slices left in %s: %s", self.folder, error)
        while True:
            until_roll = self._until_roll()
            try:
                item = self._queue.get(timeout=self._IDLE_WAKE if until_roll is None else min(until_roll, self._IDLE_WAKE))
            except queue.Empty:
                if self._stopping.is_set():
                    break
                if self._until_roll() == 0:
                    self._roll()  # an idle slice is published on time too
                continue
            batch = [item]
            # Whatever else waits now goes in the same write: one fsync for all of it.
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except BaseException as error:  # these requests fail; the writer goes on unless it must stop
                failure = SinkUnavailable(f"cannot write to {self.describe()}: {error}")
                for _, future in batch:
                    _settle(future, failure)
                if not isinstance(error, Exception):
                    raise
                log.exception("cannot store %d IP requests in %s", len(batch), self.folder)
        self._roll()

    def _until_roll(self) -> float | None:
        if self._slice is None:
            return None
        return max(0.0, self._slice.opened + self.roll_seconds - time.monotonic())

    def _commit(self, batch: list[tuple[list[bytes], Future[None]]]) -> None:
        data = b"".join(line + b"\n" for lines, _ in batch for line in lines)
        count = data.count(b"\n")
        try:
            current = self._slice or self._open()
            current.append(data, count)
        except OSError as error:
            log.error("cannot write %d IP records to %s: %s", count, self.folder, error)
            self._abandon()
            failure = SinkUnavailable(
                f"cannot write to {self.describe()}: {error.strerror or error}"
            )
            for _, future in batch:
                _settle(future, failure)
            return
        if current.records >= self.max_records_per_file or self._until_roll() == 0:
            self._roll()  # before answering: a slice ending now is visible when they get their 202
        for _, future in batch:
            _settle(future, None)

    def _open(self) -> _Slice:
        now = datetime.now(UTC)
        folder = self.folder / f"{now:%Y-%m-%d}"
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_dir(folder.parent)  # the new date folder's entry survives a crash too
        while True:
            self._seq += 1
            name = f"ip-{now:%Y%m%dT%H%M%S.%f}Z-{os.getpid()}-{self._seq}.jsonl"
            try:
                fd = os.open(
                    folder / f".{name}{OPEN_SUFFIX}",
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL,
                    FILE_MODE,
                )
            except FileExistsError:
                continue
            hidden = folder / f".{name}{OPEN_SUFFIX}"
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # Between the create and the lock another collector on this folder may have
                # taken the empty file for an orphan and unlinked it: then take another name.
                if os.fstat(fd).st_nlink == 0:
                    os.close(fd)
                    continue
                _fsync_dir(folder)
            except OSError:
                os.close(fd)
                hidden.unlink(missing_ok=True)
                raise
            self._slice = _Slice(fd, hidden, folder / name, time.monotonic())
            return self._slice

    def _roll(self) -> None:
        current, self._slice = self._slice, None
        if current is None:
            return
        try:
            current.publish()  # closes its descriptor, whatever happens
        except OSError as error:  # its records are durable, just not visible: the next sink publishes them
            log.error("cannot publish %s: %s", current.hidden, error)

    def _abandon(self) -> None:
        """Give up a slice whose write failed: what it held before was acknowledged, so it
        is published now, a torn last line cut off (or by the next sink, if this fails too)."""
        current, self._slice = self._slice, None
        if current is None:
            return
        os.close(current.fd)  # releases its lock
        try:
            publish_hidden(current.hidden)
        except OSError as error:
            log.error("cannot publish %s: %s", current.hidden, error)


OPEN_SUFFIX = ".open"
# IP addresses are personal data: landing files are for their owner (the collector, the batch).
FILE_MODE = 0o600


@dataclass
class _Slice:
    """The landing file being appended to (hidden, locked by its writer)."""

    fd: int
    hidden: Path
    visible: Path
    opened: float
    records: int = 0

    def append(self, data: bytes, count: int) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        os.fsync(self.fd)
        self.records += count

    def publish(self) -> None:
        """Give the slice its visible name (never replacing a file), then release it."""
        try:
            if self.records:
                os.link(self.hidden, self.visible)
            os.unlink(self.hidden)
            _fsync_dir(self.hidden.parent)
        finally:
            os.close(self.fd)


def publish_orphans(folder: Path) -> list[Path]:
    """Publish the hidden slices under `folder` that no live writer holds (their writer died
    or gave up on them); a torn last line is cut off first. Returns the visible files made."""
    published = []
    for hidden in sorted(folder.glob(f"*/.ip-*{OPEN_SUFFIX}")):
        if visible := publish_hidden(hidden):
            published.append(visible)
    return published


def publish_hidden(hidden: Path) -> Path | None:
    """Publish one hidden slice unless a live writer holds its lock; its visible name, or None."""
    try:
        fd = os.open(hidden, os.O_RDWR)
    except FileNotFoundError:
        return None  # published by its writer meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live writer's slice
        if not hidden.exists():
            return None
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            log.warning("%s: dropping a torn last line of %d bytes", hidden, len(data) - whole)
            os.ftruncate(fd, whole)
            os.fsync(fd)
        visible = hidden.with_name(hidden.name[1 : -len(OPEN_SUFFIX)])
        if whole:
            os.link(hidden, visible)
        os.unlink(hidden)
        _fsync_dir(hidden.parent)
        return visible if whole else None
    finally:
        os.close(fd)


def _settle(future: Future[None], error: BaseException | None) -> None:
    """Complete `future`, unless its waiter already gave up on it (cancelled) or it is done."""
    if future.done() or not future.set_running_or_notify_cancel():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Pending:
    """The delivery reports one `submit` waits for."""

    def __init__(self, expected: int) -> None:
        self.future: Future[None] = Future()
        self.expected = expected
        self.error: str | None = None
        self.lock = threading.Lock()

    def done(self, error: str | None = None, n: int = 1) -> None:
        with self.lock:
            self.expected -= n
            self.error = self.error or error
            finished = self.expected == 0
        if finished:
            _settle(self.future, SinkUnavailable(self.error) if self.error else None)


class KafkaSink:
    """Each record one message of `topic`, keyed by its IP; done when the broker acknowledged it."""

    def __init__(self, bootstrap: str, topic: str, delivery_timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.delivery_timeout = delivery_timeout
        self._producer = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    def describe(self) -> str:
        return f"Kafka topic {self.topic} at {self.bootstrap}"

    def _started(self):
        """The producer and its polling thread, made on the first records (an app that never
        ingests, as in the analytics tests, never connects)."""
        from confluent_kafka import Producer

        with self._lock:
            if self._closed.is_set():
                raise SinkUnavailable(f"{self.describe()} is closed")
            if self._producer is not None:
                return self._producer
            self._producer = Producer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 2,
                    # A request waits at most this long: then 503, rather than a client timing out.
                    "delivery.timeout.ms": max(int(self.delivery_timeout * 1000), 10),
                    # librdkafka logs each refused connection as an error; the delivery reports
                    # (a 503 with the reason) already say when the broker is away.
                    "log_level": 2,
                }
            )
            self._poller = threading.Thread(
                target=self._poll, name=f"ip-kafka-{self.topic}", daemon=True
            )
            self._poller.start()
            return self._producer

    def answers(self, timeout: float = 5) -> bool:
        """Whether the broker answers a metadata request for the topic (connects the producer)."""
        try:
            topics = self._started().list_topics(self.topic, timeout=timeout).topics
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return self.topic in topics and topics[self.topic].error is None

    def submit(self, records: Sequence[Record]) -> Future[None]:
        from confluent_kafka import KafkaException

        pending = _Pending(len(records))
        if not records:
            _settle(pending.future, None)
            return pending.future
        producer = self._started()

        def delivered(error, _message) -> None:
            pending.done(
                f"Kafka did not acknowledge the records on {self.topic}: {error.str()}"
                if error
                else None
            )

        for n, record in enumerate(records):
            try:
                producer.produce(
                    self.topic,
                    value=encode(record),
                    key=record["ip"].encode(),
                    on_delivery=delivered,
                )
            except (BufferError, KafkaException) as error:
                reason = "producer queue full" if isinstance(error, BufferError) else str(error)
                pending.done(f"cannot send to {self.describe()}: {reason}", n=len(records) - n)
                break
        return pending.future

    def close(self) -> None:
        """Wait (up to the delivery timeout) for what is in flight, then stop polling."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        if self._producer is not None:
            self._producer.flush(self.delivery_timeout + 1)
            self._poller.join()

    def _poll(self) -> None:
        # Delivery reports are served by poll(): this thread completes the requests' futures.
        while not self._closed.is_set():
            self._producer.poll(0.1)
