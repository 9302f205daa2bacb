"""Execute the notebooks of notebooks/ against a warehouse and keep the executed copies.

    python -m lakehouse.notebooks --warehouse ./warehouse          # all of them (make notebooks)
    python -m lakehouse.notebooks --warehouse ./warehouse traffic  # one, by name
    python -m lakehouse.notebooks --install-kernel                 # only register the kernel

Each notebook runs top to bottom in a kernel of this venv's Python (the `lakehouse`
kernelspec, installed into the venv), with notebooks/ as its working directory and the
warehouse handed over as LAKEHOUSE_WAREHOUSE / LAKEHOUSE_PROFILE: the notebook reads it
through the same config and session factory as the jobs. The notebooks of one call share
one kernel (one JVM start, not one per notebook); before each, the kernel's names are
reset (`%reset -f`), so a notebook that leans on another's variables fails. The executed copy, outputs and
images included, is written to --out (default `.data/notebooks/`) even when a cell fails,
and the run fails when any cell does. The committed notebooks keep no outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config import PROFILES, project_root

KERNEL_NAME = "lakehouse"
KERNEL_DISPLAY_NAME = "Python 3 (lakehouse .venv)"
# A cell of ours reads gold or counts a table; ten minutes means it hangs.
CELL_TIMEOUT = 600
# A kernel's JVM takes a while to start on a busy 2-core machine.
STARTUP_TIMEOUT = 180


@dataclass(frozen=True)
class Executed:
    """One notebook's run: where its executed copy is, how long it took, what it showed."""

    notebook: Path
    output: Path
    seconds: float
    images: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def notebook_paths(folder: Path, names: list[str] | None = None) -> list[Path]:
    """The notebooks of `folder` (or those named, with or without `.ipynb`), by name."""
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not names:
        return found
    wanted = {n.removesuffix(".ipynb") for n in names}
    unknown = wanted - {p.stem for p in found}
    if unknown:
        raise SystemExit(f"no such notebook in {folder}: {', '.join(sorted(unknown))}")
    return [p for p in found if p.stem in wanted]


def install_kernel() -> str:
    """Register the `lakehouse` kernelspec in this venv (running this interpreter) unless it is
    there; fails when Jupyter resolves that name to another interpreter (a user-level spec)."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def resolved() -> str | None:
        try:
            return KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0]
        except NoSuchKernel:
            return None

    if resolved() != sys.executable:
        install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, prefix=sys.prefix)
    if (found := resolved()) != sys.executable:
        raise RuntimeError(
            f"the Jupyter kernel {KERNEL_NAME!r} runs {found}, not {sys.executable}: remove that "
            f"kernelspec (`jupyter kernelspec remove {KERNEL_NAME}`) and run again"
        )
    return KERNEL_NAME


def kernel_env(warehouse: str | None, profile: str | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: `base` (default: ours) with the warehouse and profile set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("LAKEHOUSE_HOME", str(project_root()))
    if warehouse:
        env["LAKEHOUSE_WAREHOUSE"] = warehouse
    if profile:
        env["LAKEHOUSE_PROFILE"] = profile
    return env


def _outputs(nb) -> list:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def image_count(nb) -> int:
    """Outputs of the notebook holding a PNG image."""
    return sum(1 for o in _outputs(nb) if "image/png" in o.get("data", {}))


def error_outputs(nb) -> list[str]:
    """`Name: message` of each error output of the notebook."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in _outputs(nb) if o.get("output_type") == "error"]


@contextmanager
def shared_kernel(cwd: Path, env: Mapping[str, str]) -> Iterator[object]:
    """A running `lakehouse` kernel (a jupyter_client KernelManager) in `cwd` with `env`,
    for `execute(..., kernel=...)`; shut down on leaving."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name=install_kernel())
    manager.start_kernel(env=dict(env), cwd=str(cwd))
    try:
        yield manager
    finally:
        manager.shutdown_kernel(now=True)


def _preamble(env: Mapping[str, str]) -> str:
    """Code run in a shared kernel before a notebook: no names left from the one before, and
    the notebook's LAKEHOUSE_* settings in the environment, as a fresh kernel would have."""
    settings = {k: v for k, v in env.items() if k.startswith("LAKEHOUSE_")}
    return (
        "%reset -f\nimport os as _os\n"
        f"[_os.environ.pop(_k) for _k in list(_os.environ) if _k.startswith('LAKEHOUSE_')]\n"
        f"_os.environ.update({settings!r})\ndel _os"
    )


def _run_in(kernel, code: str) -> None:
    """Run `code` in the running `kernel`; RuntimeError when it fails."""
    client = kernel.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=STARTUP_TIMEOUT)
        reply = client.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
    finally:
        client.stop_channels()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel setup failed: {reply['content'].get('evalue')}")


def execute(path: Path, out_dir: Path, env: Mapping[str, str], timeout: int = CELL_TIMEOUT,
            kernel: object | None = None) -> Executed:
    """Run the notebook at `path` and write its executed copy to `out_dir`; a failing cell
    stops the run and is reported, not raised. In a fresh `lakehouse` kernel, or in the
    running `kernel` (of `shared_kernel()`), its names reset and its LAKEHOUSE_* settings `env`'s."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        km=kernel,
        kernel_name=install_kernel(),
        timeout=timeout,
        startup_timeout=STARTUP_TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},
    )
    if kernel is not None:
        _run_in(kernel, _preamble(env))
    started = time.monotonic()
    problem = None
    try:
        client.execute(env=dict(env))
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        problem = f"{type(error).__name__}: {error}".splitlines()[0]
    seconds = time.monotonic() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / path.name
    nbformat.write(nb, output)
    errors = error_outputs(nb)
    if problem and not errors:
        errors = [problem]  # a timeout or a dead kernel leaves no error output
    return Executed(path, output, seconds, image_count(nb), errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all of notebooks/)")
    parser.add_argument("--warehouse", help="warehouse dir or s3a:// url (default: from the config)")
    parser.add_argument("--profile", choices=PROFILES, help="config profile (default: $LAKEHOUSE_PROFILE or local)")
    parser.add_argument("--out", help="where the executed copies go (default: .data/notebooks/)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help=f"seconds per cell (default {CELL_TIMEOUT})")
    parser.add_argument("--install-kernel", action="store_true", help="only register the venv's kernel for Jupyter")
    args = parser.parse_args(argv)
    if args.install_kernel:
        print(f"kernel {install_kernel()!r} runs {sys.executable}")
        return 0
    root = project_root()
    out_dir = Path(args.out) if args.out else root / ".data" / "notebooks"
    warehouse = args.warehouse
    if warehouse and "://" not in warehouse:
        warehouse = str(Path(warehouse).resolve())
    env = kernel_env(warehouse, args.profile)
    failed = 0
    paths = notebook_paths(root / "notebooks", args.names)
    with shared_kernel(root / "notebooks", env) as shared:
        for path in paths:
            run = execute(path, out_dir, env, args.timeout, kernel=shared)
            print(f"{path.name}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.1f}s, {run.images} image(s) -> {run.output}", flush=True)
            for error in run.errors:
                print(f"  {error}", flush=True)
            failed += not run.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
