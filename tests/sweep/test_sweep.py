"""Sweep building blocks without training: plugin discovery, config, search space, budget, lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.trial import TrialState, create_trial

from deepms.sweep.budget import budget_of
from deepms.sweep.lock import FileLock, study_lock
from deepms.sweep.settings import SweepSettings
from deepms.sweep.space import check_keys, format_value, parse_space, suggest, to_overrides
from deepms.sweep.study import make_pruner, make_sampler
from tests.conftest import ROOT

PDEEP_KEYS = {
    "model.num_layers",
    "model.hidden_size",
    "model.dropout",
    "model.optimizer.lr",
    "data.batch_size",
}


def test_help_does_not_import_optuna_or_the_sweep_driver() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "hydra.core.plugins" in imported  # the plugin scan ran
    assert not {"optuna", "deepms.sweep.driver", "sqlalchemy"} & imported


def test_plugin_scan_finds_the_sweeper_without_heavy_imports() -> None:
    code = (
        "import sys; from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import "
        "Sweeper; names = [c.__name__ for c in Plugins.instance().discover(Sweeper)]; "
        "heavy = {'optuna', 'mlflow', 'torch', 'lightning', 'sqlalchemy'} & set(sys.modules); "
        "print(','.join(names), sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    names, heavy = result.stdout.strip().split(" ", 1)
    assert "DeepmsOptunaSweeper" in names.split(",")
    assert heavy == "[]"


@pytest.fixture
def sweep_config():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        yield compose("config", overrides=["task=pdeep", "sweep=pdeep"], return_hydra_config=True)


def test_sweep_group_selects_the_sweeper_and_the_pdeep_space(sweep_config) -> None:
    sweeper = sweep_config.hydra.sweeper
    assert sweeper._target_.endswith("DeepmsOptunaSweeper")
    assert sweeper.direction == sweep_config.task.mode == "max"
    assert sweeper.monitor == "val_median_pcc"
    space = parse_space(sweeper.params)
    assert set(space) == PDEEP_KEYS
    check_keys(space, sweep_config)  # every swept key exists in the composed config
    assert space["model.optimizer.lr"].log and space["model.optimizer.lr"].low == 1e-4
    assert space["model.num_layers"].type == "int" and space["model.num_layers"].high == 3
    assert set(space["data.batch_size"].choices) == {32, 64, 128}
    assert sweep_config.test is False


def test_settings_default_storage_is_sqlite_under_mlruns(sweep_config, monkeypatch) -> None:
    from omegaconf import OmegaConf

    monkeypatch.delenv("DEEPMS_OPTUNA_STORAGE", raising=False)
    raw = OmegaConf.to_container(sweep_config.hydra.sweeper, resolve=True)
    settings = SweepSettings.from_dict(raw, sweep_config)
    assert settings.direction == "maximize" and settings.n_trials == 30
    expected = Path(sweep_config.paths.mlruns_dir).resolve() / "optuna.db"
    assert settings.storage == f"sqlite:///{expected}"
    monkeypatch.setenv("DEEPMS_OPTUNA_STORAGE", "postgresql://u@h:1/db")
    assert SweepSettings.from_dict(raw, sweep_config).storage == "postgresql://u@h:1/db"
    with pytest.raises(ValueError, match="direction"):
        SweepSettings.from_dict({**raw, "direction": "up"}, sweep_config)
    with pytest.raises(ValueError, match="n_trials"):
        SweepSettings.from_dict({**raw, "n_trials": 0}, sweep_config)


def test_suggest_stays_in_the_space() -> None:
    space = parse_space(
        {
            "model": {
                "num_layers": {"type": "int", "low": 1, "high": 3},
                "dropout": {"type": "float", "low": 0.0, "high": 0.5},
                "optimizer": {"lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True}},
            },
            "data.batch_size": {"type": "categorical", "choices": [32, 64, 128]},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = suggest(study.ask(), space)
        assert 1 <= values["model.num_layers"] <= 3
        assert 0.0 <= values["model.dropout"] <= 0.5
        assert 1e-4 <= values["model.optimizer.lr"] <= 3e-3
        assert values["data.batch_size"] in (32, 64, 128)
    dist = study.trials[0].distributions["model.optimizer.lr"]
    assert dist.log


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"x": {"type": "float", "low": 1.0, "high": 0.0}}, "low <= high"),
        ({"x": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log scale"),
        ({"x": {"type": "categorical", "choices": []}}, "non-empty"),
        ({"x": {"type": "normal", "low": 0, "high": 1}}, "type must be"),
        ({"x": {"type": "int", "low": 0, "hgih": 1}}, "unknown keys"),
    ],
)
def test_bad_space_is_rejected_with_the_key(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_space(bad)


@pytest.mark.parametrize("value", [3, 0.1, 1.5e-05, True, None, "spectral_angle", "it's a,b"])
def test_override_values_parse_back(value: object) -> None:
    override = OverridesParser.create().parse_override(to_overrides({"a.b": value})[0])
    assert override.key_or_group == "a.b" and override.value() == value
    assert format_value(value)


def _trial(number: int, state: TrialState, retry_of: list[int] | None = None):
    trial = create_trial(
        state=state,
        value=0.5 if state == TrialState.COMPLETE else None,
        system_attrs={"retry_history": retry_of} if retry_of else None,
    )
    trial.number = number
    return trial


def test_budget_counts_finished_trials_and_reuses_dead_workers_slots() -> None:
    trials = [
        _trial(0, TrialState.COMPLETE),
        _trial(1, TrialState.PRUNED),
        _trial(2, TrialState.FAIL),  # crashed: counts
        _trial(3, TrialState.FAIL),  # worker died, re-queued as 5: does not count
        _trial(4, TrialState.RUNNING),
        _trial(5, TrialState.WAITING, retry_of=[3]),
    ]
    budget = budget_of(trials, n_trials=5)
    assert (budget.spent, budget.running, budget.waiting) == (3, 1, 1)
    assert budget.retried == {3} and budget.free == 1 and not budget.done
    assert budget_of(trials, n_trials=3).done
    assert budget_of(trials, n_trials=4).free == 0  # the last slot is held by trial 4


def test_file_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / "study.lock"
    first, second = FileLock(path), FileLock(path)  # two open files: flock excludes them
    events: list[str] = []
    first.acquire()

    def contender() -> None:
        with second:
            events.append("second")

    thread = threading.Thread(target=contender)
    thread.start()
    time.sleep(0.3)
    events.append("first releases")
    first.release()
    thread.join(timeout=10)
    assert events == ["first releases", "second"]


def test_lock_kind_follows_the_storage(tmp_path: Path) -> None:
    assert type(study_lock(f"sqlite:///{tmp_path}/o.db", "a/b")).__name__ == "FileLock"
    assert type(study_lock(None, "s")).__name__ == "ThreadLock"
    assert type(study_lock("postgresql://u@127.0.0.1:1/db", "s")).__name__ == "DatabaseLock"


def test_sampler_and_pruner_choices() -> None:
    assert isinstance(make_sampler({"type": "tpe", "seed": 1}), optuna.samplers.TPESampler)
    assert isinstance(make_sampler({"type": "random"}), optuna.samplers.RandomSampler)
    pruners = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    for kind, cls in pruners.items():
        options = {"threshold": {"lower": 0.1}}.get(kind, {})
        assert isinstance(make_pruner({"type": kind, kind: options}), cls)
    with pytest.raises(ValueError, match="pruner"):
        make_pruner({"type": "asha"})


def test_pruning_reports_a_cross_validated_fold_at_its_own_steps() -> None:
    from types import SimpleNamespace

    import torch

    from deepms.sweep.pruning import ACTIVE_TRIALS, OptunaPruning

    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    ACTIVE_TRIALS[trial.number] = trial
    try:
        callback = OptunaPruning(trial.number, "val_mae", step_offset=40)
        trainer = SimpleNamespace(
            sanity_checking=False,
            world_size=1,
            current_epoch=3,
            callback_metrics={"val_mae": torch.tensor(1.5)},
        )
        callback.on_validation_end(trainer, None)
    finally:
        ACTIVE_TRIALS.pop(trial.number)
    assert study.trials[0].intermediate_values == {43: 1.5}  # fold 1 of 40-epoch folds, epoch 3
