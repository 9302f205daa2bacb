"""The notebooks of notebooks/ run top to bottom against a warehouse the batch wrote, and
against an empty one, and draw; the committed copies keep no outputs.

All runs share one kernel (one JVM, as `make notebooks` does): before each notebook its
names are reset, so a notebook leaning on another's variables fails here too.

The warehouse is built once for the module by two batch runs over different slices of the
samples (with response times, so latency is drawn), so every gold table has two versions for
the lineage notebook's time travel.
"""

from __future__ import annotations

import os
import shutil

import nbformat
import pytest

from lakehouse.config import load_config
from lakehouse.jobs.batch import run_batch
from lakehouse.notebooks import execute, image_count, kernel_env, notebook_paths, shared_kernel
from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.notebooks

NOTEBOOKS = ROOT / "notebooks"
NAMES = ["traffic", "product_analytics", "data_quality_and_lineage"]
KERNEL_METADATA = {"kernelspec": {"name": "lakehouse", "display_name": "lakehouse", "language": "python"}}
RESPONSE_TIME_FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'


def clean_environ() -> dict[str, str]:
    """Our environment without LAKEHOUSE_* settings of whoever runs the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}


def slice_of(path, start: int, step: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[start::step])


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("notebooks")
    access, views = base / "in" / "access", base / "in" / "views"
    access.mkdir(parents=True)
    views.mkdir(parents=True)
    config = load_config(
        profile="local", environ=clean_environ(), overrides={"access_logs": {"log_format": RESPONSE_TIME_FORMAT}}
    ).with_warehouse(str(base / "warehouse"))
    # Every 10th line (20th view) spans all three sample days; the second run's slice is
    # another file, so it adds rows to every day and gold gets a second version of each.
    # A broken line in each makes sure both quarantine tables exist.
    for run in (0, 1):
        broken = f"not a log line {run}\n".encode()
        (access / f"part{run}.log").write_bytes(slice_of(SAMPLES / "access_response_time.log", 5 * run, 10) + broken)
        (views / f"part{run}.jsonl").write_bytes(slice_of(SAMPLES / "product_views.jsonl", 10 * run, 20) + broken)
        run_batch(spark, config, str(access), str(views), export=False)
    return config.warehouse


@pytest.fixture(scope="module")
def kernel():
    with shared_kernel(NOTEBOOKS, kernel_env(None, "local", clean_environ())) as running:
        yield running


def streams(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")


def test_the_three_notebooks_are_there_without_outputs():
    paths = notebook_paths(NOTEBOOKS)
    assert sorted(p.stem for p in paths) == sorted(NAMES)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "lakehouse", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {cell.id} has outputs"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_pipelines_warehouse_and_draws(name, warehouse, kernel, tmp_path):
    run = execute(NOTEBOOKS / f"{name}.ipynb", tmp_path, kernel_env(warehouse, "local", clean_environ()), kernel=kernel)
    print(f"{name}: {run.seconds:.1f}s, {run.images} images")
    assert run.ok, run.errors
    executed = nbformat.read(run.output, as_version=4)
    assert run.images >= 1 and image_count(executed) == run.images
    # Every table it reads is there, and the lineage notebook found two versions to compare.
    assert "no data" not in streams(executed)
    assert f"warehouse {warehouse}" in streams(executed)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_an_empty_warehouse_saying_no_data(name, kernel, tmp_path):
    empty = tmp_path / "empty-warehouse"
    run = execute(NOTEBOOKS / f"{name}.ipynb", tmp_path / "out", kernel_env(str(empty), "local", clean_environ()),
                  kernel=kernel)
    assert run.ok, run.errors
    assert run.images >= 1  # the "no data" figures
    assert "no data" in streams(nbformat.read(run.output, as_version=4))


def test_a_notebook_in_the_shared_kernel_sees_no_name_of_the_one_before(kernel, tmp_path):
    cells = {"first": "leftover = 1\nimport os\nprint(os.environ['LAKEHOUSE_WAREHOUSE'])",
             "second": "import os\nprint('leftover' in dir(), os.environ.get('LAKEHOUSE_WAREHOUSE'))"}
    (tmp_path / "in").mkdir()
    for name, code in cells.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)], metadata=KERNEL_METADATA)
        nbformat.write(nb, tmp_path / "in" / f"{name}.ipynb")
    first = execute(tmp_path / "in" / "first.ipynb", tmp_path / "out", kernel_env("/wh/a", None, clean_environ()), kernel=kernel)
    assert first.ok and streams(nbformat.read(first.output, as_version=4)) == "/wh/a\n"
    second = execute(tmp_path / "in" / "second.ipynb", tmp_path / "out", kernel_env(None, None, clean_environ()), kernel=kernel)
    assert second.ok and streams(nbformat.read(second.output, as_version=4)) == "False None\n"


def test_a_failing_cell_fails_the_run_and_the_executed_copy_shows_it(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("print('before')"), nbformat.v4.new_code_cell("raise ValueError('boom')"),
               nbformat.v4.new_code_cell("print('never')")],
        metadata=KERNEL_METADATA,
    )
    (tmp_path / "in").mkdir()
    nbformat.write(nb, tmp_path / "in" / "broken.ipynb")
    run = execute(tmp_path / "in" / "broken.ipynb", tmp_path / "out", kernel_env(None, None, clean_environ()))
    assert not run.ok and run.errors == ["ValueError: boom"] and run.images == 0
    executed = nbformat.read(tmp_path / "out" / "broken.ipynb", as_version=4)
    assert streams(executed) == "before\n"


def test_notebooks_are_picked_by_name_and_unknown_names_stop(tmp_path):
    for name in ("b.ipynb", "a.ipynb"):
        shutil.copy(NOTEBOOKS / "traffic.ipynb", tmp_path / name)
    assert [p.name for p in notebook_paths(tmp_path)] == ["a.ipynb", "b.ipynb"]
    assert [p.name for p in notebook_paths(tmp_path, ["b"])] == ["b.ipynb"]
    with pytest.raises(SystemExit, match="no such notebook .*: c"):
        notebook_paths(tmp_path, ["c.ipynb"])
