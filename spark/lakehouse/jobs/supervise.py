"""Keep the long-running sources running on the native stack: each a child process,
restarted when it exits, after a delay that grows while it keeps failing.

    lakehouse supervise                          # every service of supervise.services
    lakehouse supervise --service poll --service serve
    lakehouse supervise --list                   # the configured services and their commands

A service is a `lakehouse` command line (`supervise.services` in conf/lakehouse.yaml:
`poll`, `serve`, `stream --trigger "10 seconds"`, a `mirror ...`). A service that exits,
whatever its exit code, is started again: after `restart_delay_seconds`, doubled after
each exit that follows a run shorter than `healthy_after_seconds`, up to
`max_restart_delay_seconds`. SIGTERM or Ctrl-C stops every service (SIGTERM to the
service, SIGKILL to its whole process group after `stop_timeout_seconds`) and then the
supervisor. In compose
the same services run as containers with restart policies instead.

Written here rather than taken from supervisord or systemd: the packages are fixed by the
design card, systemd is not there in a container or on a laptop, and what is needed (start,
watch, back off, stop a process group) is this one module. No Spark session is started.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from lakehouse.config import PROFILES, SuperviseConfig, load_config

log = logging.getLogger("lakehouse.supervise")


def restart_delay(quick_exits: int, policy: SuperviseConfig) -> float:
    """Seconds to wait before the next start after `quick_exits` short runs in a row (≥ 1)."""
    return min(policy.max_restart_delay_seconds, policy.restart_delay_seconds * 2 ** max(0, quick_exits - 1))


@dataclass
class Service:
    """One supervised command: its process while it runs, its restarts and when it may start again."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    quick_exits: int = 0
    restarts: int = 0
    start_at: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        # Its own process group: stopping it reaches what it started (a Spark driver's JVM).
        self.process = subprocess.Popen(self.argv, start_new_session=True)
        self.started = time.monotonic()
        log.info("%s: started (pid %d): %s", self.name, self.process.pid, shlex.join(self.argv[3:]))

    def check(self, policy: SuperviseConfig, now: float) -> None:
        """Start the service when it is due; notice an exit and schedule the restart."""
        if self.process is None:
            if now >= self.start_at:
                self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        ran = now - self.started
        self.exits.append(code)
        self.quick_exits = 1 if ran >= policy.healthy_after_seconds else self.quick_exits + 1
        delay = restart_delay(self.quick_exits, policy)
        self.process, self.start_at = None, now + delay
        self.restarts += 1
        log.warning("%s: exited with code %d after %.1fs; restart %d in %.1fs", self.name, code, ran, self.restarts, delay)

    def stop(self, timeout: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM to the service itself, not its group: a Spark job finishes its batch in
        # flight and stops its own JVM, which a SIGTERM of its own would kill under it.
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s: still running %.0fs after SIGTERM: killed", self.name, timeout)
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()
        log.info("%s: stopped (code %s)", self.name, self.process.returncode)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(process.pid, sig)


def command_line(line: str) -> list[str]:
    """The argv of a service's `lakehouse` command line, run by this interpreter."""
    return [sys.executable, "-m", "lakehouse.cli", *shlex.split(line)]


def supervise(services: list[Service], policy: SuperviseConfig, tick: float = 0.2) -> None:
    """Run the services until SIGTERM/SIGINT, then stop them all."""
    stopping = []

    def on_signal(signum, _frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping:
            now = time.monotonic()
            for service in services:
                service.check(policy, now)
            time.sleep(tick)
        log.info("supervise: %s received, stopping %d service(s)", signal.Signals(stopping[0]).name, len(services))
    finally:
        for service in services:
            service.stop(policy.stop_timeout_seconds)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse supervise", description="Keep the long-running sources running (restart with back-off).")
    parser.add_argument("--service", action="append", help="only this configured service (repeatable; default: all)")
    parser.add_argument("--list", action="store_true", help="print the configured services and exit")
    parser.add_argument("--profile", choices=PROFILES, help="config profile (default: $LAKEHOUSE_PROFILE or local)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    policy = load_config(profile=args.profile).supervise
    if args.list:
        for name, line in policy.services.items():
            print(f"{name}: lakehouse {line}")
        return 0
    names = args.service or list(policy.services)
    if unknown := [n for n in names if n not in policy.services]:
        parser.error(f"no service named {', '.join(unknown)} in supervise.services (configured: {', '.join(policy.services) or 'none'})")
    if not names:
        parser.error("supervise.services is empty: nothing to run")
    if args.profile:  # the services read the same profile
        os.environ["LAKEHOUSE_PROFILE"] = args.profile
    supervise([Service(name, command_line(policy.services[name])) for name in names], policy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
