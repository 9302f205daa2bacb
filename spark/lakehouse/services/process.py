"""Process handling shared by the local service managers (PostgreSQL, Kafka, MinIO).

Each service keeps its state under one base dir, by default `<project root>/.data/<service>`,
and its server log at `<base dir>/<service>.log`. Servers that refuse to run as root are run
as an unprivileged system user (`run_as`), so the base dir and its parents must be reachable
by that user (`make_traversable`, `give_to`). Nothing here is run directly.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until host:port accepts connections; RuntimeError after `timeout` seconds."""
    if not wait_until(lambda: port_open(host, port), timeout):
        raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:g}s")

