"""Peers of the DIA scorer, run side by side on the same peak groups: PyProphet 3 (its default
semi-supervised LDA, and ``--classifier XGBoost``) and mokapot 0.10 (its default Percolator-style
linear SVM, :func:`mokapot.brew`).

Each peer lives in a virtual environment of its own under ``.venv-peers/<env>`` (their pins clash
with the main environment and with each other: mokapot 0.10 needs numpy < 2, PyProphet 3 pins
pandas 2.2.3 and resolves numpy 2). Build them with ``make peers`` (``bash envs/setup.sh``); pins in
``envs/<env>/requirements.txt``. ``DEEPMS_PEERS_DIR`` overrides the folder.

:func:`run_peer` writes the table in the peer's input layout with a ``row_id`` column, runs the
peer in a subprocess with its environment's python (single-threaded, seeded), and reads back the
peer's discriminant score of every row -- PyProphet's ``d_score``, mokapot's cross-validated SVM
score -- aligned to the input rows, higher = more target-like. Error rates are then computed by
the caller with :mod:`deepms.metrics.fdr`, the same definition for every method;
:func:`run_peer_detailed` also returns each peer's own q-values for comparison.

Seeding: PyProphet draws its cross-validation splits from Python's ``random`` (its ``--test``
mode instead takes the first half of the sorted group ids in every iteration); the driver seeds
``random`` and ``numpy.random`` with ``seed`` and runs PyProphet's CLI in-process without
``--test``, so the default randomised cross-validation is kept and repeatable. mokapot gets
``rng=seed`` and its default :class:`mokapot.PercolatorModel` is built by the driver with
``rng=seed, n_jobs=1`` (``brew``'s own instance seeds its grid-search folds from an unseeded RNG
and uses every core); numpy's global RNG is seeded as well. The table is written sorted by group
(PyProphet requires each group's rows to be contiguous) and, within a group, by ``feature_id``
when there is one, so a peer's result does not depend on the caller's row order.

PyProphet's semi-supervised learner estimates Storey's pi0 while it learns; with XGBoost the
final fit on the cross-validated scores can separate the training set so well that the estimate is
<= 0 and PyProphet aborts ("The estimated pi0 <= 0"; seen on PyProphet's own 9,165-row test data
and on small synthetic tables). Then the run is repeated once with ``--pi0_lambda 0 0 0`` (a
fixed lambda of 0: pi0 = 1, i.e. no pi0 correction) and the fallback is logged and recorded in
:attr:`PeerResult.notes`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from deepms.peer_envs import (
    REPO_ROOT,
    PeerError,
    PeerUnavailableError,
    env_bin,
    failure,
    peer_environment,
    run_logged,
    tail,
)

log = logging.getLogger(__name__)

PEERS = ("pyprophet_lda", "pyprophet_xgboost", "mokapot")
#: the virtual environment (envs/<env>/requirements.txt, .venv-peers/<env>) of each peer
PEER_ENVS = {"pyprophet_lda": "pyprophet", "pyprophet_xgboost": "pyprophet", "mokapot": "mokapot"}
#: PyProphet's ``--classifier`` of each PyProphet peer
PYPROPHET_CLASSIFIERS = {"pyprophet_lda": "LDA", "pyprophet_xgboost": "XGBoost"}
DEFAULT_TIMEOUT_S = 3600.0
ROW_ID = "row_id"


@dataclass
class PeerResult:
    """One peer's run over a table, aligned to the table's rows."""

    name: str
    #: the peer's discriminant score per row (higher = more target-like)
    scores: np.ndarray
    #: the peer's own q-value of the row's group (precursor in a run), on the group's best row
    #: by the peer's score (PyProphet ``peak_group_rank == 1``, mokapot's PSM-level winner);
    #: NaN on the other rows
    q_values: np.ndarray
    wall_s: float
    command: list[str]
    notes: list[str] = field(default_factory=list)


def _check_name(name: str) -> str:
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    return PEER_ENVS[name]


def peer_python(name: str) -> Path:
    """The python of ``name``'s environment (``name`` a peer or an environment name).

    Raises :class:`PeerUnavailableError`, saying how to build it, when the environment is missing
    or half-built.
    """
    env = PEER_ENVS.get(name, name)
    if env not in set(PEER_ENVS.values()):
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    return env_bin(env, "python", peer=name)


# --- input layouts -----------------------------------------------------------------------------


def _group_key(frame: pd.DataFrame) -> pd.Series:
    """The peer's group: a precursor in a run (``group_id``, qualified by ``run`` when the same
    group_id occurs in several runs)."""
    group = frame["group_id"].astype(str)
    if "run" in frame.columns and frame.groupby(group, sort=False)["run"].nunique().max() > 1:
        group = frame["run"].astype(str) + "::" + group
    return group


def _ordered(frame: pd.DataFrame, group: pd.Series) -> np.ndarray:
    """Row positions sorted by group, then ``feature_id`` (else input order) within a group."""
    keys = pd.DataFrame({"g": group.to_numpy(), "pos": np.arange(len(frame))})
    by = ["g"]
    if "feature_id" in frame.columns:
        keys["f"] = frame["feature_id"].astype(str).to_numpy()
        by.append("f")
    by.append("pos")
    return keys.sort_values(by, kind="stable")["pos"].to_numpy()


def _check_frame(frame: pd.DataFrame, score_columns: Sequence[str]) -> list[str]:
    columns = list(score_columns)
    if not columns:
        raise ValueError("no score columns given")
    missing = [c for c in ["group_id", "decoy", *columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate score columns in {columns}")
    decoy = frame["decoy"].astype(bool)
    if decoy.all() or not decoy.any():
        raise ValueError("a peer needs both targets and decoys")
    values = frame[columns].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = [c for c in columns if not np.isfinite(frame[c].to_numpy(np.float64)).all()]
        raise ValueError(f"non-finite values in score columns {bad}")
    return columns


def pyprophet_score_names(score_columns: Sequence[str]) -> list[str]:
    """PyProphet's names for the sub-scores: one ``main_var_*`` (its starting score) and
    ``var_*``; a column without that prefix gets ``var_`` (the first, ``main_var_``, when none is
    a main score)."""
    columns = list(score_columns)
    mains = [c for c in columns if c.startswith("main_var_")]
    if len(mains) > 1:
        raise ValueError(f"PyProphet takes exactly one main_var_ score, got {mains}")
    names = []
    for i, c in enumerate(columns):
        if c.startswith(("main_var_", "var_")):
            names.append(c)
        elif not mains and i == 0:
            names.append(f"main_var_{c}")
        else:
            names.append(f"var_{c}")
    if len(set(names)) != len(names):
        raise ValueError(f"score columns {columns} collide once renamed to {names}")
    return names


def pyprophet_input(frame: pd.DataFrame, score_columns: Sequence[str]) -> pd.DataFrame:
    """PyProphet's legacy TSV layout: ``group_id, run_id, decoy, main_var_*, var_*`` plus our
    ``row_id`` (the frame's row position), rows contiguous per group."""
    columns = _check_frame(frame, score_columns)
    group = _group_key(frame)
    order = _ordered(frame, group)
    run = frame["run"] if "run" in frame.columns else pd.Series(0, index=frame.index)
    run_id = pd.factorize(run.astype(str), sort=True)[0]
    out = pd.DataFrame(
        {
            ROW_ID: np.arange(len(frame)),
            "group_id": group.to_numpy(),
            "run_id": run_id,
            "decoy": frame["decoy"].astype(bool).astype(int).to_numpy(),
        }
    )
    for name, c in zip(pyprophet_score_names(columns), columns, strict=True):
        out[name] = frame[c].to_numpy(dtype=np.float64)
    return out.iloc[order].reset_index(drop=True)


def mokapot_input(frame: pd.DataFrame, score_columns: Sequence[str]) -> pd.DataFrame:
    """The table the mokapot driver turns into a :class:`mokapot.LinearPsmDataset`: ``row_id``;
    ``run`` + ``group_id`` the spectrum columns (one winner per precursor in a run); ``peptide``
    the target-decoy pair (``pair_id``, else the group); ``target`` (not decoy); the features."""
    columns = _check_frame(frame, score_columns)
    clash = {ROW_ID, "run", "group_id", "peptide", "target"} & set(columns)
    if clash:
        raise ValueError(f"score columns {sorted(clash)} clash with mokapot's layout")
    group = _group_key(frame)
    order = _ordered(frame, group)
    run = frame["run"] if "run" in frame.columns else pd.Series("0", index=frame.index)
    pair = frame["pair_id"] if "pair_id" in frame.columns else group
    out = pd.DataFrame(
        {
            ROW_ID: np.arange(len(frame)),
            "run": run.astype(str).to_numpy(),
            "group_id": group.to_numpy(),
            "peptide": pair.astype(str).to_numpy(),
            "target": (~frame["decoy"].astype(bool)).astype(int).to_numpy(),
        }
    )
    for c in columns:
        out[c] = frame[c].to_numpy(dtype=np.float64)
    return out.iloc[order].reset_index(drop=True)


# --- drivers: scripts run inside the peer environments, beside their requirements ------------

DRIVERS = {
    "pyprophet": REPO_ROOT / "envs" / "pyprophet" / "driver.py",
    "mokapot": REPO_ROOT / "envs" / "mokapot" / "driver.py",
}


def _run(name: str, command: list[str], workdir: Path, seed: int, timeout: float, log_name: str):
    log_path = workdir / log_name
    env = peer_environment(isolated=True, seed=seed)
    rc, wall = run_logged(name, command, workdir, log_path, env, timeout)
    return rc, wall, log_path


def _align(name: str, n: int, row_id: np.ndarray, values: dict[str, np.ndarray]):
    row_id = np.asarray(row_id, dtype=np.int64)
    if len(row_id) != n or not np.array_equal(np.sort(row_id), np.arange(n)):
        raise PeerError(f"peer {name!r} returned {len(row_id)} rows for {n} input rows")
    out = {}
    for key, v in values.items():
        a = np.full(n, np.nan)
        a[row_id] = np.asarray(v, dtype=np.float64)
        out[key] = a
    return out


def _run_pyprophet(name, frame, columns, seed, workdir, timeout) -> PeerResult:
    python = peer_python(name)
    table = pyprophet_input(frame, columns)
    infile = workdir / f"{name}_input.tsv"
    table.to_csv(infile, sep="\t", index=False)
    driver = DRIVERS["pyprophet"]
    outfile = workdir / f"{name}.tsv"
    base = [str(python), str(driver), str(seed), "score", "--in", str(infile)]
    args = ["--out", str(outfile), "--classifier", PYPROPHET_CLASSIFIERS[name], "--threads", "1"]
    command = base + args
    notes: list[str] = []
    rc, wall, log_path = _run(name, command, workdir, seed, timeout, f"{name}.log")
    if rc != 0 and "estimated pi0 <= 0" in tail(log_path, 5):
        notes.append(
            "PyProphet's pi0 estimate was <= 0 with its default --pi0_lambda 0.1 0.5 0.05; "
            "reran with --pi0_lambda 0 0 0 (pi0 = 1)"
        )
        log.warning("dia peer %s: %s", name, notes[-1])
        command = [*command, "--pi0_lambda", "0", "0", "0"]
        rc, wall2, log_path = _run(name, command, workdir, seed, timeout, f"{name}_pi0_1.log")
        wall += wall2
    if rc != 0:
        raise failure(name, command, rc, log_path)
    scored = outfile.with_name(f"{outfile.stem}_scored.tsv")
    if not scored.is_file():
        raise PeerError(f"peer {name!r}: no {scored.name} after {shlex.join(command)}")
    out = pd.read_csv(scored, sep="\t", usecols=[ROW_ID, "d_score", "q_value", "peak_group_rank"])
    q = out["q_value"].where(out["peak_group_rank"] == 1)
    values = _align(name, len(frame), out[ROW_ID].to_numpy(), {"s": out["d_score"], "q": q})
    return PeerResult(name, values["s"], values["q"], wall, command, notes)


def _run_mokapot(name, frame, columns, seed, workdir, timeout) -> PeerResult:
    python = peer_python(name)
    table = mokapot_input(frame, columns)
    infile = workdir / f"{name}_input.tsv"
    table.to_csv(infile, sep="\t", index=False)
    driver = DRIVERS["mokapot"]
    spec = {
        "input": str(infile),
        "output": str(workdir / f"{name}_scores.tsv"),
        "info": str(workdir / f"{name}_info.json"),
        "features": list(columns),
        "seed": int(seed),
    }
    args_file = workdir / f"{name}_args.json"
    args_file.write_text(json.dumps(spec, indent=1))
    command = [str(python), str(driver), str(args_file)]
    rc, wall, log_path = _run(name, command, workdir, seed, timeout, f"{name}.log")
    notes = []
    if rc != 0 and "below 'test_fdr'" in tail(log_path):
        # mokapot calibrates its folds' scores on targets at test_fdr (default 1 %, with +1 in
        # the decoy count); on a few hundred precursors a fold can have none. The threshold only
        # aligns the folds' score scales: our q-values come from the returned scores anyway.
        spec["test_fdr"] = 0.05
        args_file.write_text(json.dumps(spec, indent=1))
        rc, more, log_path = _run(name, command, workdir, seed, timeout, f"{name}_retry.log")
        wall += more
        notes.append("no fold had targets at test_fdr 0.01; reran with test_fdr 0.05")
        log.warning("dia peer %s: %s", name, notes[-1])
    if rc != 0:
        raise failure(name, command, rc, log_path)
    out = pd.read_csv(spec["output"], sep="\t")
    info = json.loads(Path(spec["info"]).read_text())
    if info.get("best_feature"):
        notes.append("mokapot kept the best single feature (its model did not beat it)")
    values = _align(
        name, len(frame), out[ROW_ID].to_numpy(), {"s": out["score"], "q": out["q_value"]}
    )
    return PeerResult(name, values["s"], values["q"], wall, command, notes)


def run_peer_detailed(
    name: str,
    frame: pd.DataFrame,
    score_columns: Sequence[str],
    seed: int,
    workdir: str | os.PathLike[str],
    timeout: float = DEFAULT_TIMEOUT_S,
) -> PeerResult:
    """Run peer ``name`` over ``frame`` (see :func:`run_peer`); scores, the peer's own q-values,
    wall time, command and notes."""
    _check_name(name)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    columns = list(score_columns)
    seed = int(seed) % 2**31
    if name == "mokapot":
        result = _run_mokapot(name, frame, columns, seed, workdir, timeout)
    else:
        result = _run_pyprophet(name, frame, columns, seed, workdir, timeout)
    if np.isnan(result.scores).any():
        raise PeerError(f"peer {name!r} left {int(np.isnan(result.scores).sum())} rows unscored")
    log.info("dia peer %s: %d rows in %.1f s", name, len(frame), result.wall_s)
    return result


def run_peer(
    name: str,
    frame: pd.DataFrame,
    score_columns: Sequence[str],
    seed: int,
    workdir: str | os.PathLike[str],
    timeout: float = DEFAULT_TIMEOUT_S,
) -> np.ndarray:
    """Peer ``name``'s discriminant score of every row of ``frame`` (same order; higher = more
    target-like): PyProphet's ``d_score`` or mokapot's cross-validated score.

    ``frame``: the task's peak-group table (``group_id``, ``decoy``, optionally ``run``,
    ``pair_id``, ``feature_id``, and the ``score_columns``); entrapment rows are plain targets
    to the peer. Runs in ``workdir`` (inputs, logs and the peer's outputs stay there).
    Raises :class:`PeerUnavailableError` when the peer's environment is not built and
    :class:`PeerError` (with the command and the tail of the peer's output) when it fails.
    """
    return run_peer_detailed(name, frame, score_columns, seed, workdir, timeout).scores


_VERSION_PACKAGES = {
    "pyprophet": ("pyprophet", "xgboost-cpu", "scikit-learn", "numpy", "pandas"),
    "mokapot": ("mokapot", "scikit-learn", "numpy", "pandas"),
}


def peer_versions() -> dict[str, str]:
    """Versions of the peers and their main dependencies, for logging: ``{"pyprophet": "3.0.15",
    "pyprophet/numpy": ..., "mokapot": "0.10.0", ...}``; ``"not built"`` for a missing
    environment."""
    out: dict[str, str] = {}
    for env, packages in _VERSION_PACKAGES.items():
        try:
            python = peer_python(env)
        except PeerUnavailableError:
            out[env] = "not built"
            continue
        code = (
            "import json, sys, importlib.metadata as m; "
            "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
        )
        try:
            proc = subprocess.run(
                [str(python), "-c", code, *packages],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
                env=peer_environment(isolated=True, seed=0),
            )
            found = json.loads(proc.stdout)
        except (subprocess.SubprocessError, ValueError) as exc:
            out[env] = f"unknown ({exc})"
            continue
        for package, version in found.items():
            out[package if package == env else f"{env}/{package}"] = version
        out[f"{env}/python"] = _python_version(python)
    return out


def _python_version(python: Path) -> str:
    try:
        proc = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return proc.stdout.strip()
    except subprocess.SubprocessError:
        return "unknown"


if __name__ == "__main__":  # python -m deepms.tasks.dia.peers: print the versions
    json.dump(peer_versions(), sys.stdout, indent=1)
    print()
