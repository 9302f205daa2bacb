"""Process handling shared by the local service managers (PostgreSQL, Kafka, MinIO).

Hand-written on purpose, around the standard library: the servers must outlive the process
that starts them (`make services-up` returns; `make services-down` is another process), so
they are found again through pid files and /proc, which test-oriented executors such as
mirakuru (made to stop what they started, within one process) do not do.

Each service keeps its state under one base dir, by default `<project root>/.data/<service>`,
and its server log at `<base dir>/<service>.log`. Servers that refuse to run as root are run
as an unprivileged system user (`run_as`), so the base dir and its parents must be reachable
by that user (`make_traversable`, `give_to`). Nothing here is run directly.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config import project_root

FALLBACK_USER = "lakehouse"


@dataclass(frozen=True)
class ServiceUser:
    """An OS account to run a server as; `name` is also used in messages."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def from_pwd(cls, entry: pwd.struct_passwd) -> ServiceUser:
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    @classmethod
    def current(cls) -> ServiceUser:
        return cls.from_pwd(pwd.getpwuid(os.geteuid()))


def free_ports(n: int = 1) -> list[int]:
    """`n` distinct loopback ports free right now, picked by the OS (never fixed numbers:
    tests and whatever else runs on the machine must not collide)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def is_root() -> bool:
    return os.geteuid() == 0


def service_user(preferred: Iterable[str] = (), fallback: str = FALLBACK_USER) -> ServiceUser:
    """The account to run a server as.

    When not root we can only run as ourselves. As root: the first existing `preferred`
    account (e.g. `postgres`, created by the Debian package), else `fallback`, created as a
    system user with no login shell if it does not exist yet.
    """
    if not is_root():
        return ServiceUser.current()
    for name in (*preferred, fallback):
        try:
            return ServiceUser.from_pwd(pwd.getpwnam(name))
        except KeyError:
            continue
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    proc = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
         fallback],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot create system user {fallback!r}: {proc.stderr.strip()}")
    return ServiceUser.from_pwd(pwd.getpwnam(fallback))


def run_as(
    user: ServiceUser,
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` as `user` (dropping root if needed), capturing text output; never raises on exit code.

    The environment is minimal on purpose: root's HOME, XDG dirs etc. are unreadable for the
    service user and some tools (initdb, pg_ctl) fail in confusing ways when they point there.
    """
    base_env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": user.home,
        "USER": user.name,
        "LOGNAME": user.name,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    base_env.update(env or {})
    drop: dict[str, object] = {}
    if is_root() and user.uid != 0:
        # Without extra_groups the child would keep root's supplementary groups.
        drop = {
            "user": user.uid,
            "group": user.gid,
            "extra_groups": os.getgrouplist(user.name, user.gid),
        }
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=base_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
        **drop,  # type: ignore[arg-type]
    )


def give_to(path: Path, user: ServiceUser) -> None:
    """Make `user` the owner of `path` itself (not recursive); a no-op when not root.

    Deliberately not recursive: a mistyped base dir must not hand a whole tree to a
    service account.
    """
    if is_root() and path.stat().st_uid != user.uid:
        os.chown(path, user.uid, user.gid)


def make_traversable(path: Path, user: ServiceUser) -> None:
    """Let `user` reach `path`: add o+x on every ancestor it could not otherwise enter.

    Needed because the data lives under root-owned folders (the checkout, pytest's 0700 tmp
    dirs); only the search bit is added, never read, so listings stay private.
    """
    if not is_root() or user.uid == 0:
        return
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == user.uid or st.st_mode & 0o001:
            continue
        if st.st_mode & 0o010 and st.st_gid in os.getgrouplist(user.name, user.gid):
            continue
        os.chmod(parent, st.st_mode | 0o001)


def service_base_dir(service: str) -> Path:
    """Default state folder of a service: `<project root>/.data/<service>` (gitignored)."""
    return project_root() / ".data" / service


def resolve_base(service: str, base_dir: Path | None) -> Path:
    """The state folder of `service`: `base_dir`, else the default, made absolute (paths
    inside it are handed to servers whose cwd differs and compared with /proc cmdlines)."""
    return (Path(base_dir) if base_dir is not None else service_base_dir(service)).absolute()


def log_file(base_dir: Path, service: str) -> Path:
    """The server log of a service: `<base dir>/<service>.log`."""
    return base_dir / f"{service}.log"


def display_path(path: Path) -> str:
    """`path` relative to the project root when inside it, for short status lines."""
    try:
        return str(path.resolve().relative_to(project_root()))
    except (ValueError, OSError):
        return str(path)


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log file at {path})"
    return "\n".join(text.splitlines()[-lines:])


def read_pid(pid_file: Path) -> int | None:
    """The pid on the first line of `pid_file`, or None if missing or unreadable."""
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.write_text(f"{pid}\n")


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process; zombies (exited, not yet reaped) count as dead.

    Daemons we start get reparented to PID 1, which in containers does not always reap, so a
    stopped server can linger as a zombie that `kill -0` still reports.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill -0
    # Format: "pid (comm) state ..."; comm may contain spaces and parens.
    return stat.rpartition(")")[2].split()[0] != "Z"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.1
) -> bool:
    """Poll `check` until it returns True (-> True) or `timeout` seconds pass (-> False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def progress(message: str) -> None:
    """A progress line on stderr (builds, downloads), so stdout stays the command's answer."""
    print(message, file=sys.stderr, flush=True)


def go_binary(what: str) -> str:
    """The `go` executable, or a RuntimeError saying that `what` needs it."""
    for candidate in (shutil.which("go"), "/usr/local/go/bin/go", str(Path.home() / "go/bin/go")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(f"Go (>= 1.24) is needed to build {what} from source but `go` is not on the PATH; install it from https://go.dev/dl/")


def go_build(
    binary: Path,
    what: str,
    steps: Callable[[str, Path], Sequence[Sequence[str]]],
    *,
    files: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """`binary`, built with Go on first use (minutes; later: instant).

    `steps(go, work)` are the commands run in a fresh temporary folder `work` next to
    `binary` (after writing `files` there; GOBIN points there too, for `go install`); they
    must leave `work/<binary name>`, which is renamed into place, so an interrupted build
    never leaves a broken binary. Concurrent
    callers wait for one build (file lock). Output goes to `build.log` beside the binary;
    a failure raises RuntimeError with its tail. CGO is off: static binaries, no C compiler.
    """
    if os.access(binary, os.X_OK):
        return binary
    go = go_binary(what)
    binary.parent.mkdir(parents=True, exist_ok=True)
    with locked(binary.parent / ".build.lock"):
        if os.access(binary, os.X_OK):  # built by someone else while we waited
            return binary
        progress(f"building {what} (first time, a few minutes)...")
        started = time.monotonic()
        log = binary.parent / "build.log"
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=binary.parent))
        try:
            for name, text in (files or {}).items():
                (work / name).write_text(text)
            build_env = os.environ | {"CGO_ENABLED": "0", "GOBIN": str(work)} | dict(env or {})
            with log.open("w") as out:
                for step in steps(go, work):
                    out.write(f"$ {' '.join(step)}\n")
                    out.flush()
                    proc = subprocess.run(list(step), cwd=work, env=build_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
                    if proc.returncode != 0:
                        break
            built = work / binary.name
            if proc.returncode != 0 or not built.is_file():
                raise RuntimeError(
                    f"building {what} failed (`{' '.join(step[:3])}` exit {proc.returncode})\n"
                    f"--- last lines of {log} ---\n{tail(log)}"
                )
            os.replace(built, binary)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        progress(f"built {what} in {time.monotonic() - started:.0f}s: {binary}")
    return binary


def refuse_taken(what: str, host: str, ports: Iterable[int], log: Path) -> None:
    """RuntimeError when another process already listens on one of `ports`."""
    for port in dict.fromkeys(ports):
        if port_open(host, port):
            raise RuntimeError(
                f"port {host}:{port} is in use by another process (not the {what}); "
                f"stop it or pick another port\n--- last lines of {log} ---\n{tail(log)}"
            )


def wait_started(what: str, pid: int, ready: Callable[[], bool], deadline: float, *, log: Path, pid_file: Path) -> None:
    """Wait until `ready()` or the server `pid` exits (its pid file removed) or `deadline`
    (time.monotonic) passes; RuntimeError with the log's tail unless ready."""
    exited = False

    def done() -> bool:
        nonlocal exited
        exited = not alive(pid)
        return exited or ready()

    ok = wait_until(done, max(deadline - time.monotonic(), 0), interval=0.1)
    if exited:
        pid_file.unlink(missing_ok=True)
        raise RuntimeError(f"{what} exited during start\n--- last lines of {log} ---\n{tail(log)}")
    if not ok:
        raise RuntimeError(f"{what} (pid {pid}, still running) not ready in time\n--- last lines of {log} ---\n{tail(log)}")


def terminate(what: str, pid: int, timeout: float, *, kill: bool = False) -> bool:
    """Stop `pid`: SIGTERM and up to `timeout` seconds for a clean exit, else (or at once with
    `kill`) SIGKILL. True when it exited on SIGTERM; RuntimeError if it survives SIGKILL."""

    def gone() -> bool:
        return not alive(pid)

    if not kill:
        signal_pid(pid, signal.SIGTERM)
        if wait_until(gone, timeout):
            return True
        print(f"{what}: pid {pid} still running {timeout:g}s after SIGTERM; killing it", file=sys.stderr)
    signal_pid(pid, signal.SIGKILL)
    if not wait_until(gone, 10):
        raise RuntimeError(f"{what}: pid {pid} survived SIGKILL")
    return False


def stop_pid(what: str, pid: int, host: str, ports: Iterable[int], *, timeout: float, kill: bool, log: Path, pid_file: Path) -> None:
    """Stop the server `pid`: SIGTERM (graceful) or, with `kill`, SIGKILL; then wait until it
    is gone and its `ports` are closed (a Go program's main thread can exit while others
    still hold the sockets). RuntimeError if not within `timeout` seconds."""
    ports = tuple(ports)
    signal_pid(pid, signal.SIGKILL if kill else signal.SIGTERM)

    def stopped() -> bool:
        return not alive(pid) and not any(port_open(host, p, timeout=0.2) for p in ports)

    if not wait_until(stopped, timeout, interval=0.05):
        raise RuntimeError(
            f"{what} (pid {pid}) did not stop within {timeout:g}s; try again with kill (`down --kill`)\n"
            f"--- last lines of {log} ---\n{tail(log)}"
        )
    forget(pid)
    pid_file.unlink(missing_ok=True)


@dataclass(frozen=True)
class ServiceCli:
    """What differs between the services' command lines; `main` does the rest.

    `up(base, args)` starts the service and says where it runs; `running(base)` says where
    it runs, or None when it is down; `stop(base, timeout=..[, kill=..])` stops it (`kill`
    when `killable`: `down --kill` sends SIGKILL).
    """

    service: str
    description: str
    default_timeout: float
    arguments: Callable[[argparse.ArgumentParser], object]
    up: Callable[[Path, argparse.Namespace], str]
    running: Callable[[Path], str | None]
    stop: Callable[..., None]
    killable: bool = False
    data_dir: Callable[[Path], Path] = lambda base: base

    def main(self, argv: list[str] | None = None) -> int:
        """`python -m lakehouse_dev.services.<service> up|down|status`: exit 0 on success (status:
        0 up, 3 down), 1 on failure."""
        parser = argparse.ArgumentParser(prog=f"python -m lakehouse_dev.services.{self.service}", description=self.description)
        parser.add_argument("action", choices=("up", "down", "status"))
        parser.add_argument("--base-dir", type=Path, default=None, help=f"state folder (default: <project>/.data/{self.service})")
        parser.add_argument("--timeout", type=float, default=self.default_timeout, help="seconds to wait")
        if self.killable:
            parser.add_argument("--kill", action="store_true", help="down: SIGKILL instead of SIGTERM")
        self.arguments(parser)
        args = parser.parse_args(argv)
        base = resolve_base(self.service, args.base_dir)
        where = f"data {display_path(self.data_dir(base))}, log {display_path(log_file(base, self.service))}"
        try:
            if args.action == "up":
                print(f"{self.service}: up on {self.up(base, args)} ({where})")
            elif args.action == "down":
                was_up = self.running(base) is not None
                self.stop(base, timeout=args.timeout, **({"kill": args.kill} if self.killable else {}))
                print(f"{self.service}: {'stopped' if was_up else 'already down'} ({where})")
            else:
                place = self.running(base)
                print(f"{self.service}: {'down' if place is None else 'up on ' + place} ({where})")
                return 3 if place is None else 0
        except RuntimeError as exc:
            print(f"{self.service}: {args.action} failed: {exc}", file=sys.stderr)
            return 1
        return 0


# Popen handles of the servers this process started, so stopping one can reap it (no
# zombies, no "subprocess still running" warnings); other processes' servers go by pid.
_children: dict[int, subprocess.Popen[bytes]] = {}


def launch(cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server detached (its own session: a Ctrl-C here does not reach it), output appended to `log`."""
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        child = subprocess.Popen(
            list(cmd), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[child.pid] = child
    return child


def alive(pid: int) -> bool:
    """Whether the server `pid` still runs (our own child: polled, so it is reaped once gone)."""
    child = _children.get(pid)
    return child.poll() is None if child is not None else pid_alive(pid)


def signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def forget(pid: int | None) -> None:
    """Drop (and reap) a stopped child of ours."""
    if pid is not None and (child := _children.pop(pid, None)) is not None:
        child.poll()


def cmdline(pid: int) -> list[str]:
    """The command line of `pid` (empty when it cannot be read): to tell a recycled pid apart."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Serialise a start, stop or build across processes (an flock on `lock_file`)."""
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
