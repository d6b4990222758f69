"""Every task in ``conf/task/`` keeps the contract a new task must meet.

Composes without the data mirror, builds the datamodule (which must not read data before
``setup``), imports the predictor the task names, and finds the task's tiny experiment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TASKS = sorted(p.stem for p in (ROOT / "conf" / "task").glob("*.yaml"))


def compose_task(task: str, tmp_path: Path, *overrides: str):
    from hydra import compose, initialize_config_dir

    base = [
        f"task={task}",
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={tmp_path / 'out'}",
        f"paths.mlruns_dir={tmp_path / 'mlruns'}",
        "paths.data_mirror=null",
        f"paths.cache_dir={tmp_path / 'empty-cache'}",
        f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
    ]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*base, *overrides])


def test_there_are_tasks() -> None:
    assert {"pdeep", "deeprt", "deepnovo", "deeploc", "deepbind", "rbppred"} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_task_config_names_its_parts(task: str, tmp_path: Path) -> None:
    cfg = compose_task(task, tmp_path)
    assert cfg.task.name == task
    for key in ("monitor", "mode", "test_metric", "predictor"):
        assert cfg.task.get(key), f"conf/task/{task}.yaml lacks task.{key}"
    assert cfg.task.mode in ("min", "max")
    assert cfg.task.monitor.startswith("val_") and cfg.task.test_metric.startswith("test_")
    assert (ROOT / "conf" / "experiment" / f"{task}_tiny.yaml").is_file()
    tiny = compose_task(task, tmp_path, f"experiment={task}_tiny")
    assert tiny.trainer.max_epochs <= 3  # tiny means seconds


@pytest.mark.parametrize("task", TASKS)
def test_datamodule_builds_without_data(task: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from deepms.training.datamodule import TaskDataModule

    cfg = compose_task(task, tmp_path)
    datamodule = instantiate(cfg.data, _recursive_=False, _convert_="all")
    assert isinstance(datamodule, TaskDataModule)
    assert datamodule.sources, f"conf/data of {task} names no source"
    assert datamodule.split_name  # named before any data is read
    assert not list((tmp_path / "empty-cache").glob("**/*"))  # nothing read or downloaded


@pytest.mark.parametrize("task", TASKS)
def test_predictor_is_importable(task: str, tmp_path: Path) -> None:
    from deepms.registry.predictor import Predictor, load_class

    cfg = compose_task(task, tmp_path)
    predictor = load_class(cfg.task.predictor)
    assert issubclass(predictor, Predictor)
    assert predictor.input_schema, f"{cfg.task.predictor} declares no input schema"
