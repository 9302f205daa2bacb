"""Files -> bronze: a record is its place (file id, line), whatever the file is called now.

Each test builds its own folder of files and its own warehouse.
"""

from __future__ import annotations

import gzip
import os
import shutil

import pytest
from pyspark.sql import functions as F

from lakehouse.io import delta
from lakehouse.io.files import read_head
from lakehouse.jobs.ingest_files import ingest
from lakehouse.jobs.runtime import JobRun


def _line(i: int, path: str = "/feed") -> bytes:
    return f'192.0.2.{i % 250} - - [01/Mar/2024:10:00:{i % 60:02d} +0000] "GET {path}?n={i} HTTP/1.1" 200 {i} "-" "UA"'.encode()


def _lines(start: int, stop: int) -> bytes:
    return b"".join(_line(i) + b"\n" for i in range(start, stop))


@pytest.fixture
def env(spark, warehouse_config, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    table = warehouse_config.table_path("bronze", "access_logs")

    def run(path=inbox):
        job = JobRun("ingest")
        written = ingest(spark, warehouse_config, "access_logs", str(path), job)
        return written, job.counts

    def bronze():
        return delta.read_table(spark, table)

    return {"inbox": inbox, "run": run, "bronze": bronze, "config": warehouse_config}


def test_identical_lines_are_all_kept_and_rereading_adds_nothing(env):
    repeated = _line(1)
    (env["inbox"] / "access.log").write_bytes(repeated + b"\n" + repeated + b"\n" + repeated + b"\n" + _line(2) + b"\n")
    assert env["run"]()[0] == 4
    assert env["run"]()[0] == 0
    rows = env["bronze"]().select("value", "source_line").orderBy("source_line").collect()
    assert [r.source_line for r in rows] == [1, 2, 3, 4]
    assert [r.value.encode() for r in rows] == [repeated, repeated, repeated, _line(2)]


def test_rotation_rename_and_compression_add_nothing(env):
    inbox = env["inbox"]
    (inbox / "access.log").write_bytes(_lines(0, 300))
    assert env["run"]()[0] == 300
    os.rename(inbox / "access.log", inbox / "access.log.1")
    assert env["run"]()[0] == 0
    data = (inbox / "access.log.1").read_bytes()
    (inbox / "access.log.2.gz").write_bytes(gzip.compress(data))
    (inbox / "access.log.1").unlink()
    written, counts = env["run"]()
    assert written == 0
    assert counts["access_logs_lines_already_in"] == 300
    assert env["bronze"]().count() == 300


def test_a_file_that_grew_adds_only_its_new_lines(env):
    log = env["inbox"] / "access.log"
    log.write_bytes(_lines(0, 100))
    env["run"]()
    with log.open("ab") as f:
        f.write(_lines(100, 130))
    assert env["run"]()[0] == 30
    lines = env["bronze"]().groupBy("source_file_id").agg(F.count("*").alias("n"), F.min("source_line"), F.max("source_line")).collect()
    assert [(r["n"], r["min(source_line)"], r["max(source_line)"]) for r in lines] == [(130, 1, 130)]


def test_a_small_file_that_grew_past_the_fingerprint_keeps_its_identity(env):
    log = env["inbox"] / "access.log"
    log.write_bytes(_lines(0, 2))  # well under 1 KiB
    assert env["run"]()[0] == 2
    with log.open("ab") as f:
        f.write(_lines(2, 40))
    assert env["run"]()[0] == 38
    assert env["bronze"]().select("source_file_id").distinct().count() == 1


def test_a_symlink_loop_and_a_copy_ingest_the_file_once(env):
    inbox = env["inbox"]
    (inbox / "logs").mkdir()
    (inbox / "logs" / "access.log").write_bytes(_lines(0, 50))
    os.symlink(inbox, inbox / "logs" / "loop")
    shutil.copy(inbox / "logs" / "access.log", inbox / "copy.log")
    written, counts = env["run"]()
    assert written == 50
    assert counts["access_logs_files_copies"] == 1


def test_files_that_only_begin_alike_are_different_files(env):
    inbox = env["inbox"]
    common = _lines(0, 40)  # > 1 KiB of identical health-check-like lines
    (inbox / "server1.log").write_bytes(common + _line(500, "/a") + b"\n")
    assert env["run"]()[0] == 41
    (inbox / "server2.log").write_bytes(common + _line(501, "/b") + b"\n" + _line(502, "/b") + b"\n")
    assert env["run"]()[0] == 42
    assert env["bronze"]().select("source_file_id").distinct().count() == 2


def test_files_that_only_end_alike_are_different_files(env):
    # Same size, same line count, same last line, different beginnings: two servers whose
    # logs end with the same health check. Neither may be taken for a copy of the other.
    inbox = env["inbox"]
    tail = _line(999, "/health") + b"\n"
    (inbox / "server1.log").write_bytes(_lines(0, 40) + tail)
    assert env["run"]()[0] == 41
    (inbox / "server2.log").write_bytes(_lines(100, 140) + tail)
    written, counts = env["run"]()
    assert (written, counts["access_logs_files_copies"]) == (41, 0)
    assert env["bronze"]().select("source_file_id").distinct().count() == 2


def test_read_head_returns_the_files_first_bytes_plain_and_gzipped(spark, tmp_path):
    data = _lines(0, 3)
    (tmp_path / "a.log").write_bytes(data)
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(data))
    assert read_head(spark, str(tmp_path / "a.log"), 20) == data[:20]
    assert read_head(spark, str(tmp_path / "a.log.gz"), 10_000) == data


def test_an_unreadable_file_is_reported_and_the_others_land(env, spark):
    inbox = env["inbox"]
    packed = gzip.compress(_lines(0, 5000))
    (inbox / "broken.log.gz").write_bytes(packed[: len(packed) // 2])
    (inbox / "good.log").write_bytes(_lines(0, 10))
    written, counts = env["run"]()
    assert written == 10
    assert counts["access_logs_files_failed"] == 1
    errors = delta.read_table(spark, env["config"].table_path("_meta", "ingest_errors")).collect()
    assert [(e.dataset, e.path.rsplit("/", 1)[-1]) for e in errors] == [("access_logs", "broken.log.gz")]
    assert "end of input" in errors[0].reason.lower()


def test_odd_names_land_a_space_and_a_hidden_name_given_directly(env):
    inbox = env["inbox"]
    (inbox / "with space.log").write_bytes(_lines(0, 3))
    (inbox / "_access.log").write_bytes(_lines(10, 14))
    assert env["run"]()[0] == 3  # in a folder, `_access.log` is hidden (like `_SUCCESS`)
    assert env["run"](inbox / "_access.log")[0] == 4
    files = {r[0].rsplit("/", 1)[-1] for r in env["bronze"]().select("source_file").distinct().collect()}
    assert files == {"with%20space.log", "_access.log"}


def test_a_lone_cr_stays_inside_its_line_and_bad_bytes_are_kept_exactly(env):
    raw = b"a\rb\r\nnot \xff utf-8\nlast"
    (env["inbox"] / "odd.log").write_bytes(raw)
    assert env["run"]()[0] == 3
    rows = env["bronze"]().orderBy("source_line").collect()
    assert [r.value for r in rows] == ["a\rb\r", "not \ufffd utf-8", "last"]
    assert [r.raw_value for r in rows] == [None, bytearray(b"not \xff utf-8"), None]


def test_within_a_folder_nothing_outside_it_is_read(spark, warehouse_config, tmp_path, capsys):
    from lakehouse.jobs import ingest_files

    root, secret = tmp_path / "incoming", tmp_path / "secret"
    (root / "feed").mkdir(parents=True)
    secret.mkdir()
    (secret / "shadow").write_bytes(_lines(0, 2))
    (root / "feed" / "access.log").write_bytes(_lines(10, 13))
    (root / "feed" / "link.log").symlink_to(secret / "shadow")  # a file that leads out
    warehouse = str(tmp_path / "warehouse")

    def run(path: str) -> int:
        return ingest_files.main(["--dataset", "access_logs", "--path", path, "--within", str(root),
                                  "--warehouse", warehouse])

    # A path that leaves the folder, by `..` or by being elsewhere: refused, nothing read.
    for path in (f"{root}/../secret/shadow", str(secret / "shadow"), f"{root}/feed/../../secret"):
        assert run(path) == 2
        assert "is outside the incoming folder" in capsys.readouterr().err
    assert not (tmp_path / "warehouse" / "bronze").exists()
    # A folder inside it: its own files land, the link out is skipped and recorded.
    assert run(str(root / "feed")) == 0
    bronze = delta.read_table(spark, warehouse_config.with_warehouse(warehouse).table_path("bronze", "access_logs"))
    assert sorted(r.value.encode() for r in bronze.collect()) == [_line(i) for i in (10, 11, 12)]
    errors = delta.read_table(spark, warehouse_config.with_warehouse(warehouse).table_path("_meta", "ingest_errors"))
    assert [(r.path.rsplit("/", 1)[-1], r.reason) for r in errors.collect()] == [("link.log", f"outside the incoming folder {root}")]
