"""Peers in their own virtual environments: where they live, how they are run, how they fail.

Tasks compare deepms with the tools users run instead (PyProphet, mokapot, Biosaur2, ...) in
the same run. Their pins often clash with ours, so each gets ``envs/<env>/requirements.txt`` and
a venv ``.venv-peers/<env>`` built by ``make peers`` (``envs/setup.sh``, which writes
:data:`MARKER` once an environment is complete). A peer runs as a subprocess on one thread, its
output logged to a file whose tail goes into the error when it fails, so a crash or a hang in a
peer never takes the deepms run down with it and the message says what to do.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from deepms.errors import DeepMSError

#: written by envs/setup.sh once an environment is fully installed (sha256 of its requirements)
MARKER = ".deepms-peer-installed"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: every threading knob a peer's libraries read: one thread, so wall times compare on one core
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "POLARS_MAX_THREADS",
    "RAYON_NUM_THREADS",
)


class PeerError(DeepMSError, RuntimeError):
    """A peer could not be run, or its output could not be read back."""


class PeerUnavailableError(PeerError, FileNotFoundError):
    """A peer's virtual environment is missing or was not fully built."""


def peers_dir() -> Path:
    """Where the peer environments live (``DEEPMS_PEERS_DIR`` or ``<repo>/.venv-peers``)."""
    return Path(os.environ.get("DEEPMS_PEERS_DIR") or REPO_ROOT / ".venv-peers")


def setup_command(env: str | None = None) -> str:
    """The command that builds the peer environments (one of them with ``env``)."""
    return "make peers" if env is None else f"make peers PEER_ENVS={env}"


def env_bin(env: str, program: str = "python", peer: str | None = None) -> Path:
    """A program of environment ``env``; :class:`PeerUnavailableError` saying how to build the
    environment when it is missing or half-built (``peer`` names the peer in the message)."""
    venv = peers_dir() / env
    path = venv / "bin" / program
    if not path.exists() or not (venv / MARKER).is_file():
        state = "missing" if not path.exists() else "not fully built (no install marker)"
        raise PeerUnavailableError(
            f"peer {peer or env!r}: virtual environment {venv} is {state}; build it with "
            f"`{setup_command(env)}` (or `bash envs/setup.sh {env}`) from the repository root; "
            f"pins in envs/{env}/requirements.txt"
        )
    return path


def peer_environment(isolated: bool = True, seed: int | None = None) -> dict[str, str]:
    """The subprocess environment: one thread; an ``isolated`` peer (own venv) sees none of our
    PYTHON*/VIRTUAL_ENV variables; ``seed`` fixes PYTHONHASHSEED."""
    env = dict(os.environ)
    if isolated:
        env = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PYTHONNOUSERSITE"] = "1"
    env.update({k: "1" for k in THREAD_VARS})
    env["MPLBACKEND"] = "Agg"
    if seed is not None:
        env["PYTHONHASHSEED"] = str(seed)
    return env


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a peer's log, colour codes removed (PyProphet colours its lines)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no output)"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(no output)"


def run_logged(
    name: str,
    command: list[str],
    workdir: Path,
    log_path: Path,
    env: dict[str, str],
    timeout: float,
) -> tuple[int, float]:
    """Run a peer command with its output in ``log_path``: (exit code, wall seconds); a timeout
    is a :class:`PeerError` with the command and the log's tail."""
    start = time.perf_counter()
    try:
        with open(log_path, "w") as sink:
            proc = subprocess.run(
                command,
                cwd=workdir,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise PeerError(
            f"peer {name!r} timed out after {timeout:.0f} s: {shlex.join(command)}\n"
            f"--- last lines of its output ({log_path}) ---\n{tail(log_path)}"
        ) from None
    return proc.returncode, time.perf_counter() - start


def failure(name: str, command: list[str], rc: int, log_path: Path) -> PeerError:
    """The error of a peer that exited with ``rc``: its command and the tail of its output."""
    return PeerError(
        f"peer {name!r} failed (exit {rc}): {shlex.join(command)}\n"
        f"--- last lines of its output ({log_path}) ---\n{tail(log_path)}"
    )
