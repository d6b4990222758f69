"""A local PostgreSQL server for sweeps and tracking: ``make postgres`` (or ``python -m
deepms.tracking.postgres start|stop|status [--data DIR] [--port N]``).

Uses the Debian ``postgresql`` package's binaries. The server listens on 127.0.0.1 only, with
``trust`` authentication for the ``deepms`` role: a development server, not a shared one. initdb
refuses to run as root, so under root the server runs as the ``postgres`` system user. Tests start
their own throw-away server with :func:`start` on a free port.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
from pathlib import Path

USER = "deepms"
DATABASES = ("deepms", "mlflow")  # Optuna studies, MLflow tracking
DEFAULT_DATA = Path(".state/postgres")
DEFAULT_PORT = 5433  # not 5432, to stay clear of a system server


def bin_dir() -> Path | None:
    """The newest installed server's bin folder (pg_ctl, initdb), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def url(port: int, database: str = "deepms") -> str:
    """SQLAlchemy URL (Optuna and MLflow both take it)."""
    return f"postgresql://{USER}@127.0.0.1:{port}/{database}"


def is_running(data: Path) -> bool:
    binaries = bin_dir()
    if binaries is None or not (data / "data" / "PG_VERSION").exists():
        return False
    return (
        _run(
            _as_server_user([str(binaries / "pg_ctl"), "-D", str(data / "data"), "status"])
        ).returncode
        == 0
    )


def _prepare(data: Path, binaries: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, user="postgres")
    if not (data / "data" / "PG_VERSION").exists():
        command = [str(binaries / "initdb"), "-D", str(data / "data"), "-U", USER]
        result = _run(_as_server_user([*command, "--auth=trust", "-E", "UTF8", "--no-sync"]))
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {data}: {result.stderr.strip()}")


def _create_databases(port: int) -> None:
    import psycopg

    # autocommit: CREATE DATABASE cannot run inside a transaction
    conn = psycopg.connect(
        host="127.0.0.1", port=port, user=USER, dbname="postgres", autocommit=True
    )
    try:
        with conn.cursor() as cursor:
            for name in DATABASES:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def running_port(data: Path) -> int | None:
    """The port of the server running on ``data`` (from postmaster.pid), or None."""
    pid_file = data / "data" / "postmaster.pid"
    if not is_running(data) or not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def start(data: Path = DEFAULT_DATA, port: int = DEFAULT_PORT) -> str:
    """Initialise (once) and start the server; returns the Optuna URL. Idempotent."""
    binaries = bin_dir()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server: apt-get install -y postgresql")
    data = data.resolve()
    port = running_port(data) or port
    if not is_running(data):
        _prepare(data, binaries)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
        command = [
            str(binaries / "pg_ctl"),
            "-D",
            str(data / "data"),
            "-l",
            str(data / "server.log"),
        ]
        result = _run(_as_server_user([*command, "-o", options, "-w", "-t", "60", "start"]))
        if result.returncode != 0:
            log = (data / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed (port {port} in use?): {result.stderr}\n{log}")
    _create_databases(port)
    return url(port)


def stop(data: Path = DEFAULT_DATA, mode: str = "fast") -> None:
    """Shut down: ``fast`` ends sessions cleanly; ``immediate`` skips the checkpoint (throw-away
    servers in tests)."""
    binaries = bin_dir()
    data = data.resolve()
    if binaries is not None and is_running(data):
        command = [str(binaries / "pg_ctl"), "-D", str(data / "data"), "-m", mode, "-w", "stop"]
        _run(_as_server_user(command))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deepms.tracking.postgres", description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"], nargs="?", default="start")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="state folder")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if args.action == "stop":
        stop(args.data)
        print("stopped")
        return
    if args.action == "status":
        port = running_port(args.data.resolve())
        print(f"running on 127.0.0.1:{port}" if port else "stopped")
        return
    start(args.data, args.port)
    port = running_port(args.data.resolve()) or args.port
    print(f"PostgreSQL on 127.0.0.1:{port}, data in {args.data.resolve()}")
    print(f"  sweeps:   export DEEPMS_OPTUNA_STORAGE={url(port)}")
    print(f"  tracking: export MLFLOW_TRACKING_URI={url(port, 'mlflow')}")
    print(f"  stop:     python -m deepms.tracking.postgres stop --data {args.data}")


if __name__ == "__main__":
    main()
