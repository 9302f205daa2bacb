"""A real local PostgreSQL server for tests and `make services-up` (no Docker needed).

    python -m lakehouse_dev.services.postgres up|down|status [--port N] [--base-dir DIR]

State lives in one base dir (default `<project root>/.data/postgres`): the cluster in
`data/`, the server log in `postgres.log`, the Unix socket next to them. The server listens
on 127.0.0.1 only (port 15432 by default) and TCP logins use scram-sha-256 with the password
of the `lakehouse` role; the Debian server binaries (/usr/lib/postgresql/<version>/bin) are
installed with apt on first use. initdb and pg_ctl refuse to run as root, so as root the
cluster belongs to the `postgres` system user (or a `lakehouse` system user created for it).

From Python: `server = start(); server.psql("SELECT 1"); stop()`.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_dev.services import process
from lakehouse_dev.services.process import ServiceUser

SERVICE = "postgres"
HOST = "127.0.0.1"
DEFAULT_PORT = 15432
PASSWORD_ENV = "LAKEHOUSE_EXPORT_PASSWORD"
# A throwaway server on loopback holding only test and demo data, so a fixed, documented
# default is fine here; anything real gets its password from LAKEHOUSE_EXPORT_PASSWORD.
DEV_PASSWORD = "lakehouse-dev"
SUPERUSER = "postgres"
PSQL = Path("/usr/bin/psql")
PG_LIB = Path("/usr/lib/postgresql")
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready")
# Linux sun_path is 108 bytes including the trailing NUL.
MAX_SOCKET_PATH = 107

_apt_updated = False


@dataclass(frozen=True)
class PostgresServer:
    """Connection details of a running server; `psql` runs SQL over TCP as `user`."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    base_dir: Path

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    @property
    def log_file(self) -> Path:
        return process.log_file(self.base_dir, SERVICE)

    def psql(self, sql: str) -> str:
        """Run `sql` (one or more statements) and return psql's unaligned, tuples-only output.

        Rows come back as `a|b` lines; non-SELECT statements also print their command tag
        (e.g. `INSERT 0 2`), as psql does without -q.

        Raises RuntimeError with psql's stderr if any statement fails.
        """
        # Drop inherited PG* settings (PGSERVICE, PGSSLMODE, ...) that could redirect the login.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env |= {"PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"}
        cmd = [
            str(_psql_binary()), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database,
            "-f", "-",
        ]
        proc = subprocess.run(cmd, input=sql, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout


def ensure_installed() -> Path:
    """The bin dir of the newest installed PostgreSQL server, installing it with apt if none."""
    found = _installed_bin_dirs()
    if not found:
        _apt_install("postgresql")
        found = _installed_bin_dirs()
    if not found:
        raise RuntimeError(
            f"PostgreSQL server binaries ({', '.join(SERVER_TOOLS)}) not found under "
            f"{PG_LIB}/*/bin even after `apt-get install postgresql`"
        )
    return found[-1]


def start(
    base_dir: Path | None = None,
    port: int = DEFAULT_PORT,
    database: str = "lakehouse",
    user: str = "lakehouse",
    password: str | None = None,
    timeout: float = 60,
) -> PostgresServer:
    """Start (or reuse) the server of `base_dir` and make sure role `user` and `database` exist.

    Idempotent: when the server is already running it is reused (and the role's password
    reset to `password`). Raises RuntimeError, with the server log's tail where useful, when
    the server cannot be started or does not become ready within `timeout` seconds.
    """
    base = process.resolve_base(SERVICE, base_dir)
    password = password or os.environ.get(PASSWORD_ENV) or DEV_PASSWORD
    deadline = time.monotonic() + timeout
    running_port = _running_port(base)
    if running_port is None:
        _launch(base, port, deadline)
    elif running_port != port:
        raise RuntimeError(
            f"postgres of {base} is already running on port {running_port}, not {port}; "
            "stop it first or use that port"
        )
    bin_dir = _bin_dir_for(base)
    _wait_ready(bin_dir, base, port, deadline)
    _ensure_role_and_database(base, port, database, user, password, deadline)
    return PostgresServer(HOST, port, database, user, password, base)


def stop(base_dir: Path | None = None, timeout: float = 30) -> None:
    """Stop the server of `base_dir` (fast shutdown); does nothing if it is not running."""
    base = process.resolve_base(SERVICE, base_dir)
    if _running_port(base) is None:
        return
    data = _data_dir(base)
    owner = ServiceUser.from_pwd(_pwd_of(data))
    proc = _run(
        owner,
        [_bin_dir_for(base) / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w", "-t",
         str(max(1, int(timeout))), "-s"],
        cwd=base, timeout=timeout + 5, what="pg_ctl stop",
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pg_ctl stop failed for {data}: {proc.stderr.strip()}\n"
            f"--- last lines of {_log(base)} ---\n{process.tail(_log(base))}"
        )


def status(base_dir: Path | None = None) -> bool:
    """Whether the server of `base_dir` is running (its postmaster.pid names a live process)."""
    return _running_port(process.resolve_base(SERVICE, base_dir)) is not None


# --- internals ---------------------------------------------------------------------------


def _data_dir(base: Path) -> Path:
    return base / "data"


def _log(base: Path) -> Path:
    return process.log_file(base, SERVICE)


def _pwd_of(path: Path) -> pwd.struct_passwd:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid)
    except KeyError:
        raise RuntimeError(f"{path} is owned by uid {uid}, which has no account") from None


def _running_port(base: Path) -> int | None:
    """Port of the live server of `base`, from postmaster.pid (pid, datadir, start, port, ...)."""
    try:
        lines = (_data_dir(base) / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    return port if process.pid_alive(pid) else None


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", bin_dir.parent.name))


def _installed_bin_dirs() -> list[Path]:
    """Complete server bin dirs under /usr/lib/postgresql, oldest version first."""
    dirs = [
        d for d in PG_LIB.glob("*/bin")
        if re.fullmatch(r"\d+(\.\d+)?", d.parent.name)
        and all(os.access(d / tool, os.X_OK) for tool in SERVER_TOOLS)
    ]
    return sorted(dirs, key=_version_key)


def _bin_dir_for(base: Path) -> Path:
    """Binaries matching an existing cluster's PG_VERSION, else the newest (installing if needed)."""
    version_file = _data_dir(base) / "PG_VERSION"
    if not version_file.is_file():
        return ensure_installed()
    version = version_file.read_text().strip()
    bin_dir = PG_LIB / version / "bin"
    if not all(os.access(bin_dir / tool, os.X_OK) for tool in SERVER_TOOLS):
        have = [d.parent.name for d in _installed_bin_dirs()] or ["none"]
        raise RuntimeError(
            f"{_data_dir(base)} was created by PostgreSQL {version} but its binaries are not "
            f"installed (installed: {', '.join(have)}); install postgresql-{version} or "
            f"remove {base} to start over"
        )
    return bin_dir


def _apt_install(*packages: str) -> None:
    global _apt_updated
    if not process.is_root():
        raise RuntimeError(
            f"PostgreSQL server binaries are missing and installing them needs root: "
            f"apt-get install -y {' '.join(packages)}"
        )
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("PostgreSQL server binaries are missing and apt-get is not available")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    steps = [] if _apt_updated else [[apt, "update"]]
    # The Debian package may also create and start its own "main" cluster on 5432; it does
    # not get in the way (other port, other socket dir), so it is left alone.
    steps.append([apt, "install", "-y", "--no-install-recommends", *packages])
    for cmd in steps:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            output = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{output}")
        if cmd[1] == "update":
            _apt_updated = True


def _run(
    user: ServiceUser, cmd: list, *, cwd: Path, timeout: float, what: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return process.run_as(user, cmd, cwd=cwd, timeout=max(timeout, 1), input=input)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} did not finish within {timeout:.0f}s") from None


def _owner(base: Path) -> ServiceUser:
    """Who runs the server: the owner of an existing cluster, else the service account."""
    data = _data_dir(base)
    if (data / "PG_VERSION").is_file():
        owner = ServiceUser.from_pwd(_pwd_of(data))
        if owner.uid == 0:
            raise RuntimeError(f"{data} is owned by root; PostgreSQL cannot run as root")
        return owner
    return process.service_user(preferred=(SUPERUSER,))


def _launch(base: Path, port: int, deadline: float) -> None:
    """Prepare the base dir, initdb if it is new, write the config, and pg_ctl start."""
    socket_file = f"{base}/.s.PGSQL.{port}"
    if len(socket_file.encode()) > MAX_SOCKET_PATH:
        raise RuntimeError(f"base dir path too long for a Unix socket ({socket_file}); use a shorter one")
    process.refuse_taken(f"postgres of {base}", HOST, [port], _log(base))
    bin_dir = _bin_dir_for(base)
    owner = _owner(base)
    base.mkdir(parents=True, exist_ok=True)
    # 0700: the local socket lives here and local logins are trusted, so only root and the
    # service user may enter.
    base.chmod(0o700)
    process.give_to(base, owner)
    process.make_traversable(base, owner)
    data = _data_dir(base)
    log = _log(base)
    if log.exists():
        process.give_to(log, owner)

    if not (data / "PG_VERSION").is_file():
        if data.exists() and any(data.iterdir()):
            raise RuntimeError(f"{data} is not empty but holds no PostgreSQL cluster; remove it")
        if data.exists():
            process.give_to(data, owner)
        proc = _run(
            owner,
            [bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "--encoding=UTF8",
             # C collation: identical sort order on every machine, no locale packages needed.
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
             "--no-instructions"],
            cwd=base, timeout=deadline - time.monotonic(), what="initdb",
        )
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed for {data}:\n{proc.stderr.strip()}")

    _write_config(data, base, port, owner)
    proc = _run(
        owner,
        [bin_dir / "pg_ctl", "start", "-D", data, "-l", log, "-w", "-s",
         "-t", str(max(1, int(deadline - time.monotonic())))],
        cwd=base, timeout=deadline - time.monotonic() + 5, what="pg_ctl start",
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"postgres did not start on {HOST}:{port}: {proc.stderr.strip()}\n"
            f"--- last lines of {log} ---\n{process.tail(log)}"
        )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _write_config(data: Path, base: Path, port: int, owner: ServiceUser) -> None:
    """Rewrite our settings and pg_hba.conf on every start, so they always match the arguments."""
    settings = data / "lakehouse.conf"
    settings.write_text(
        "# Written by lakehouse_dev.services.postgres on every start; edits are overwritten.\n"
        f"listen_addresses = {_quote(HOST)}\n"
        f"port = {port}\n"
        f"unix_socket_directories = {_quote(str(base))}\n"
        "unix_socket_permissions = 0700\n"
    )
    hba = data / "pg_hba.conf"
    hba.write_text(
        "# Written by lakehouse_dev.services.postgres on every start; edits are overwritten.\n"
        "# Socket logins are trusted: the socket dir is 0700, so only root and the server's\n"
        "# own account reach it (used to create the role and database).\n"
        "local  all  all                 trust\n"
        "# TCP logins (JDBC, psql -h 127.0.0.1) need the role's password.\n"
        "host   all  all  127.0.0.1/32   scram-sha-256\n"
    )
    main_conf = data / "postgresql.conf"
    include = "include_if_exists = 'lakehouse.conf'"
    if include not in main_conf.read_text():
        with main_conf.open("a") as f:
            f.write(f"\n{include}\n")
    for path in (settings, hba):
        process.give_to(path, owner)
        path.chmod(0o600)


def _wait_ready(bin_dir: Path, base: Path, port: int, deadline: float) -> None:
    cmd = [str(bin_dir / "pg_isready"), "-q", "-h", HOST, "-p", str(port), "-t", "2"]

    def ready() -> bool:
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    if not process.wait_until(ready, max(deadline - time.monotonic(), 0), interval=0.2):
        raise RuntimeError(
            f"postgres of {base} not ready on {HOST}:{port} (pg_isready failed until timeout)\n"
            f"--- last lines of {_log(base)} ---\n{process.tail(_log(base))}"
        )


def _ensure_role_and_database(
    base: Path, port: int, database: str, user: str, password: str, deadline: float
) -> None:
    """Create role `user` (LOGIN, `password`) and `database` owned by it, if missing."""
    # As the superuser over the trusted socket. Names go in as psql variables (quoted by psql
    # with :'v' / :"v"); the password goes in the script on stdin so it never shows in `ps`.
    script = f"""
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\\gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD {_quote(password)};
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\\gexec
ALTER DATABASE :"db" OWNER TO :"role";
"""
    owner = ServiceUser.from_pwd(_pwd_of(_data_dir(base)))
    proc = _run(
        owner,
        [_psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", base, "-p", str(port),
         "-U", SUPERUSER, "-d", "postgres", "-v", f"role={user}", "-v", f"db={database}",
         "-f", "-"],
        cwd=base, timeout=deadline - time.monotonic(), what="creating role and database",
        input=script,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"cannot create role {user!r} / database {database!r}: {proc.stderr.strip()}"
        )


def _psql_binary() -> Path:
    if PSQL.exists():
        return PSQL
    if found := shutil.which("psql"):
        return Path(found)
    for bin_dir in reversed(_installed_bin_dirs()):
        if (bin_dir / "psql").exists():
            return bin_dir / "psql"
    raise RuntimeError("psql not found (install postgresql-client)")


# --- CLI ---------------------------------------------------------------------------------


def _up(base: Path, args: argparse.Namespace) -> str:
    server = start(base, port=args.port, timeout=args.timeout)
    return f"{server.host}:{server.port} db={server.database} user={server.user}"


def _where(base: Path) -> str | None:
    port = _running_port(base)
    return None if port is None else f"{HOST}:{port}"


CLI = process.ServiceCli(
    SERVICE,
    "Run the local PostgreSQL server used by tests and `make services-up`.",
    60,
    lambda parser: parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (up only)"),
    _up,
    _where,
    stop,
)


main = CLI.main


if __name__ == "__main__":
    raise SystemExit(main())
