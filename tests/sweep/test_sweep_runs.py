"""End-to-end sweeps on the tiny pdeep config, run as a user would: ``python train.py -m ...``.

A 3-trial sweep and its MLflow runs; resuming it with a pruner that stops a trial early; two
workers sharing one budget on sqlite and on a real PostgreSQL server; a worker killed mid-trial
whose trial is failed and re-run by the next invocation.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from deepms.sweep.budget import budget_of
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TINY = [
    "task=pdeep",
    "sweep=pdeep",
    "experiment=pdeep_tiny",
    # a cheap corner of the pdeep space: the test is about the sweep, not the model
    "hydra.sweeper.params.model.hidden_size.choices=[8,16]",
    "hydra.sweeper.params.model.num_layers.high=2",
    "hydra.sweeper.params.data.batch_size.choices=[32,64]",
    "hydra.sweeper.heartbeat_interval=1",
    "hydra.sweeper.grace_period=3",
]
NO_CHECKPOINT_ARTIFACTS = "logger.mlflow.log_model=false"


def sqlite_url(base: Path) -> str:
    return f"sqlite:///{base / 'mlruns' / 'optuna.db'}"


def command(base: Path, n_trials: int, storage: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        *TINY,
        f"paths.mlruns_dir={base / 'mlruns'}",
        f"paths.cache_dir={base / 'cache'}",
        f"hydra.sweep.dir={base / 'multirun'}",
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweeper.storage={storage}",
        *extra,
    ]


@pytest.fixture(scope="module")
def env(mirror: Path) -> dict[str, str]:
    """The user's environment, less any store it points at; one thread per worker on 2 cores."""
    skip = ("MLFLOW_TRACKING_URI", "DEEPMS_OPTUNA_STORAGE")
    environment = {k: v for k, v in os.environ.items() if k not in skip}
    environment.update(DEEPMS_DATA_MIRROR=str(mirror), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return environment


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised MLflow sqlite store, copied into each test (its migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def fresh_base(tmp_path: Path, template: Path) -> Path:
    (tmp_path / "mlruns").mkdir(parents=True)
    shutil.copy(template, tmp_path / "mlruns" / "mlflow.db")
    return tmp_path


def run(cmd: list[str], env: dict[str, str], log: Path, timeout: int = 300) -> None:
    with open(log, "w") as out:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    assert code.returncode == 0, log.read_text()[-4000:]


def trials_of(storage: str, name: str = "pdeep") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def mlflow_runs(base: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{base / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pdeep")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return client, parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


@pytest.fixture(scope="module")
def three_trials(tmp_path_factory, env, mlflow_template) -> Path:
    base = fresh_base(tmp_path_factory.mktemp("three"), mlflow_template)
    cmd = command(base, 3, sqlite_url(base), NO_CHECKPOINT_ARTIFACTS)
    run(cmd, env, base / "sweep.log")
    return base


def test_three_trial_sweep_is_one_study_and_one_parent_run(three_trials: Path) -> None:
    trials = trials_of(sqlite_url(three_trials))
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.params["model.hidden_size"] in (8, 16) for t in trials)

    client, parents, children = mlflow_runs(three_trials)
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == [0, 1, 2]
    for child in children:
        trial = trials[int(child.data.tags["sweep.trial"])]
        assert child.info.status == "FINISHED"
        assert child.data.tags["sweep.param.model.hidden_size"] == str(
            trial.params["model.hidden_size"]
        )
        assert child.data.params["model.hidden_size"] == str(trial.params["model.hidden_size"])
        assert "val_median_pcc" in child.data.metrics
    best = max(trials, key=lambda t: t.value)
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.metrics["best_val_median_pcc"] == pytest.approx(best.value)
    assert parent.data.tags["best.param.model.optimizer.lr"] == str(
        best.params["model.optimizer.lr"]
    )
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/param_importances.png"} <= artifacts


def test_resume_spends_the_new_budget_and_a_pruned_trial_stops_early(
    three_trials: Path, tmp_path: Path, env
) -> None:
    base = tmp_path / "resumed"
    shutil.copytree(three_trials / "mlruns", base / "mlruns")  # keep the first test's study
    max_epochs = 3
    cmd = command(
        base,
        4,
        sqlite_url(base),
        NO_CHECKPOINT_ARTIFACTS,
        f"trainer.max_epochs={max_epochs}",
        "hydra.sweeper.pruner.type=threshold",
        "hydra.sweeper.pruner.threshold.lower=1.5",  # a median PCC is at most 1: prune at once
    )
    run(cmd, env, base / "sweep.log")
    trials = trials_of(sqlite_url(base))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED]
    pruned = trials[3]
    assert len(pruned.intermediate_values) == 1 < max_epochs
    assert pruned.user_attrs["pruned_at_epoch"] == 0

    client, parents, children = mlflow_runs(base)
    assert len(parents) == 1 and len(children) == 4  # the same parent run goes on
    child = next(c for c in children if c.data.tags["sweep.trial"] == "3")
    assert child.info.status == "KILLED" and child.data.tags["sweep.state"] == "PRUNED"
    assert len(client.get_metric_history(child.info.run_id, "val_median_pcc")) == 1


def _two_workers(cmd: list[str], env: dict[str, str], base: Path) -> None:
    logs = [base / f"worker{i}.log" for i in range(2)]
    handles = [open(log, "w") for log in logs]  # noqa: SIM115 - closed below
    try:
        workers = [
            subprocess.Popen(cmd, env=env, stdout=h, stderr=subprocess.STDOUT) for h in handles
        ]
        codes = [w.wait(timeout=400) for w in workers]
    finally:
        for handle in handles:
            handle.close()
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    from deepms.tracking import postgres

    if postgres.bin_dir() is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install -y postgresql)")
    data = Path(tempfile.mkdtemp(prefix="deepms-pg-"))  # not under pytest's 0700 tmp: the
    try:  # server runs as the postgres user when we are root
        yield postgres.start(data, _free_port())
    finally:
        postgres.stop(data, mode="immediate")
        shutil.rmtree(data, ignore_errors=True)


def test_postgres_advisory_lock_excludes_a_second_worker(postgres_url: str) -> None:
    from deepms.sweep.lock import study_lock

    first, second = study_lock(postgres_url, "s"), study_lock(postgres_url, "s")
    other = study_lock(postgres_url, "another study")
    events: list[str] = []
    first.acquire()
    with other:  # a different study is not blocked
        events.append("other")

    def contender() -> None:
        with second:
            events.append("second")

    thread = threading.Thread(target=contender)
    thread.start()
    time.sleep(0.5)
    events.append("first releases")
    first.release()
    thread.join(timeout=30)
    assert events == ["other", "first releases", "second"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_share_a_budget_of_eight(
    backend: str, tmp_path: Path, env, mlflow_template, request
) -> None:
    base = fresh_base(tmp_path, mlflow_template)
    storage = sqlite_url(base) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    cmd = command(
        base,
        8,
        storage,
        NO_CHECKPOINT_ARTIFACTS,
        "trainer.max_epochs=1",
        "hydra.sweeper.pruner.type=none",  # every trial should complete: a failure is a bug here
    )
    _two_workers(cmd, env, base)
    trials = trials_of(storage)
    assert len(trials) == 8, [(t.number, t.state) for t in trials]
    assert sorted(t.number for t in trials) == list(range(8))  # none lost, none doubled
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials
    _, parents, children = mlflow_runs(base)
    assert len(parents) == 1  # the second worker joined the first one's parent run
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(8))


def _wait_for_running_trial(storage: str, log: Path, timeout: float = 180) -> int:
    """The number of a trial that is mid-training: RUNNING with an epoch reported."""
    deadline = time.monotonic() + timeout
    while "over 2 trials" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)
    study = optuna.load_study(study_name="pdeep", storage=storage)
    while time.monotonic() < deadline:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.intermediate_values:
                return trial.number
        time.sleep(0.2)
    raise AssertionError(f"no trial reached an epoch: {log.read_text()[-3000:]}")


def test_killed_worker_trial_is_failed_and_the_rerun_completes_the_budget(
    tmp_path: Path, env, mlflow_template
) -> None:
    base = fresh_base(tmp_path, mlflow_template)
    storage = sqlite_url(base)
    cmd = command(
        base,
        2,
        storage,
        NO_CHECKPOINT_ARTIFACTS,
        "trainer.max_epochs=6",
        "hydra.sweeper.pruner.type=none",
    )
    log = base / "killed.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            victim = _wait_for_running_trial(storage, log)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
    assert trials_of(storage)[victim].state == TrialState.RUNNING  # nobody has noticed yet

    run(cmd, env, base / "rerun.log")
    trials = trials_of(storage)
    assert trials[victim].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("retry_history") == [victim]]
    assert len(retries) == 1
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != victim)
    assert retries[0].params == trials[victim].params  # re-run with the dead trial's parameters
    budget = budget_of(trials, 2)
    assert budget.spent == 2 and budget.done and budget.running == 0
    assert len(trials) == 3  # the dead worker's trial cost no budget

    _, _, children = mlflow_runs(base)
    dead = next(c for c in children if c.data.tags["sweep.trial"] == str(victim))
    assert dead.info.status == "FAILED"  # closed by the rerun, not left RUNNING
