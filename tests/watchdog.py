"""Stops a test run's servers once the pytest process that started them is gone.

    python -m tests.watchdog <pytest pid> <run folder>

Started by tests/stack.py with the first server of a run. A run that ends normally (or on
Ctrl-C / SIGTERM) stops its servers itself and then this process; a run that is killed
outright (SIGKILL, an OOM kill) cannot, and this process does it for it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    pid, base = int(argv[0]), Path(argv[1])
    while alive(pid):
        time.sleep(1)
    from tests.stack import stop_all

    for error in stop_all(base):
        print(f"watchdog: {error}", file=sys.stderr)
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
