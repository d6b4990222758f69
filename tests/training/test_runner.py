"""The runner on a toy task (generated data, a linear model): the TaskDataModule type check, what
``RunResult`` carries, ``train=false ckpt_path=X``, the experiment kind and the MLflow datasets.

The toy task is written as a real one: a registered format, sources by path, ``assign_parts``,
a lineage, bucketed loaders, a scaling statistic fitted on the training part, ``predict_step``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from deepms.io.formats import register_format
from deepms.training.datamodule import TaskDataModule, keep_mask

ROOT = Path(__file__).resolve().parents[2]


@register_format("toy_xy", [".toy"], "(peptide, x0, x1, y)", "test-only table")
def read_toy(paths: list[Path], on_error: str = "raise", **options: Any) -> Iterator[tuple]:
    for path in paths:
        for line in path.read_text().splitlines()[1:]:
            peptide, x0, x1, y = line.split(",")
            yield peptide, float(x0), float(x1), float(y)


def write_toy(path: Path, n_peptides: int = 40, seed: int = 0) -> Path:
    """Peptides with one or two rows each; y is linear in x plus noise."""
    rng = np.random.default_rng(seed)
    lines = ["peptide,x0,x1,y"]
    for i in range(n_peptides):
        for _ in range(1 + i % 2):
            x0, x1 = rng.normal(size=2)
            y = 3 * x0 - 2 * x1 + 10 + rng.normal(scale=0.1)
            lines.append(f"PEP{i:03d}K,{x0:.5f},{x1:.5f},{y:.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.lengths = [1] * len(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple:
        return self.rows[index]


def collate(rows: list[tuple]) -> dict[str, Any]:
    return {
        "peptide": [r[0] for r in rows],
        "x": torch.tensor([[r[1], r[2]] for r in rows], dtype=torch.float32),
        "y": torch.tensor([r[3] for r in rows], dtype=torch.float32),
    }


class ToyDataModule(TaskDataModule):
    """Rows grouped by peptide; the target's mean is fitted on the training part only."""

    split_kind = "peptide_grouped"
    collate_fn = staticmethod(collate)

    def __init__(self, fail_on_fold: int | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.fail_on_fold = fail_on_fold
        self.y_mean = math.nan

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.cv is not None and self.cv.fold == self.fail_on_fold:
            raise RuntimeError(f"fold {self.cv.fold} fails on purpose")
        lineage = self.start_lineage()
        rows, index = [], []
        for source_index, opened in self.open_sources():
            for record in opened.records(self.on_error):
                rows.append(record)
                index.append(source_index)
        labels = self.assign_parts([r[0] for r in rows], index)
        keep = keep_mask(labels)
        for part in ("train", "val", "test"):
            chosen = [
                r for r, label, k in zip(rows, labels, keep, strict=True) if k and label == part
            ]
            self.datasets[part] = ToyDataset(chosen)
            lineage.n_samples[part] = len(chosen)
        self.y_mean = float(np.mean([r[3] for r in self.datasets["train"].rows]))

    def model_kwargs(self) -> dict[str, Any]:
        return {"y_mean": self.y_mean}


class ToyModel(pl.LightningModule):
    def __init__(self, y_mean: float, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1) + self.hparams.y_mean

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(self(batch["x"]), batch["y"])
        self.log("train_loss", loss, batch_size=len(batch["y"]))
        return loss

    def _mae(self, batch: dict, stage: str) -> None:
        mae = (self(batch["x"]) - batch["y"]).abs().mean()
        self.log(f"{stage}_mae", mae, batch_size=len(batch["y"]))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._mae(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._mae(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        return {"peptide": batch["peptide"], "y": batch["y"], "predicted": self(batch["x"])}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@pytest.fixture
def toy_config(tmp_path: Path):
    """A composed config whose data and model are the toy task's, tracked into ``tmp_path``."""
    from hydra import compose, initialize_config_dir

    data_file = write_toy(tmp_path / "toy.toy")

    def _compose(*overrides: str, **data: Any):
        os.environ.setdefault("DEEPMS_ROOT", str(ROOT))
        base = [
            "task=deeprt",
            f"paths.root_dir={ROOT}",
            f"paths.output_dir={tmp_path / 'out'}",
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            "trainer.log_every_n_steps=1",
            "threads=1",
        ]
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[*base, *overrides])
        with open_dict(cfg):
            cfg.data = OmegaConf.create(
                {
                    "_target_": f"{__name__}.ToyDataModule",
                    "sources": [{"path": str(data_file), "format": "toy_xy"}],
                    "split": {"fractions": [0.6, 0.2, 0.2], "seed": "${seed}"},
                    "batch_size": 16,
                    **data,
                }
            )
            cfg.model = OmegaConf.create({"_target_": f"{__name__}.ToyModel", "lr": 0.05})
        return cfg

    _compose.data_file = data_file
    return _compose


def test_a_datamodule_that_is_no_task_datamodule_is_refused(toy_config) -> None:
    from deepms.training.runner import run

    cfg = toy_config()
    cfg.data = OmegaConf.create({"_target_": "lightning.pytorch.LightningDataModule"})
    with pytest.raises(TypeError, match=r"LightningDataModule is not a .*TaskDataModule"):
        run(cfg)


def test_run_result_carries_datamodule_model_trainer_and_mlflow_records_the_data(
    toy_config, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run, sample_counts

    cfg = toy_config("run_name=toy")
    result = run(cfg)
    assert isinstance(result.datamodule, ToyDataModule) and isinstance(result.model, ToyModel)
    assert result.trainer.state.finished and result.trainer.checkpoint_callback is not None
    assert result.model.deepms_predictor == "deepms.tasks.deeprt.predict.RTPredictor"
    counts = sample_counts(result.lineage)
    assert sum(counts.values()) == 60 and counts == {
        p: len(result.datamodule.datasets[p]) for p in ("train", "val", "test")
    }
    assert result.model.hparams.y_mean == pytest.approx(result.datamodule.y_mean)

    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name("deeprt")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    mlflow_run = client.get_run(result.run_id)
    (dataset_input,) = mlflow_run.inputs.dataset_inputs
    data_file = toy_config.data_file
    sha256 = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert dataset_input.dataset.name == "toy"
    assert dataset_input.dataset.digest == sha256[:36]
    assert str(data_file) in dataset_input.dataset.source
    tags = {t.key: t.value for t in dataset_input.tags}
    assert tags["mlflow.data.context"] == result.lineage.split == "peptide_grouped_60_20_20_seed42"
    assert sha256 in dataset_input.dataset.profile
    lineage = client.download_artifacts(result.run_id, "data/lineage.json", str(tmp_path))
    assert sha256 in Path(lineage).read_text()


def test_train_false_with_ckpt_path_tests_that_checkpoint(toy_config) -> None:
    from deepms.training.runner import run

    trained = run(toy_config("run_name=trained"))
    checkpoint = trained.best_checkpoint
    assert checkpoint and Path(checkpoint).is_file()
    reloaded = run(toy_config("train=false", f"ckpt_path={checkpoint}", "run_name=reloaded"))
    untrained = run(toy_config("train=false", "run_name=untrained"))
    assert reloaded.best_checkpoint == checkpoint
    assert reloaded.metrics["test_mae"] == pytest.approx(trained.metrics["test_mae"], abs=1e-6)
    assert abs(untrained.metrics["test_mae"] - trained.metrics["test_mae"]) > 0.1
    assert untrained.best_checkpoint is None
