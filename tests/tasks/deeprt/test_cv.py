"""deeprt under cross-validation: parts of a fold never share a peptide, and every fitted
statistic (RT scaling, DeepRT's scaler/PCA/regressor stack) comes from the fold's training rows."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deepms.chem import parse_proforma
from deepms.datasets.folds import CVConfig, fold_labels
from deepms.tasks.deeprt.data import RTDataModule
from deepms.tasks.deeprt.model import RTEnsembleModel

N_SPLITS = 4


def _rt_table(tmp_path: Path) -> tuple[Path, list[tuple[str, float]]]:
    """40 sequences, some with an oxidised form too (one group, two peptides); RT in seconds."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        seq = "".join(rng.choice(list("ACDEFGHIKLNPQRSTVWY"), 6)) + "M" + "K" * (1 + i % 3)
        rows.append((seq, float(rng.uniform(300, 3000))))
        if i % 3 == 0:
            rows.append((seq.replace("M", "M[Oxidation]"), float(rng.uniform(300, 3000))))
    path = tmp_path / "column.csv"
    path.write_text("peptide,rt\n" + "".join(f"{p},{rt}\n" for p, rt in rows))
    return path, rows


def _fold(path: Path, fold: int, **kwargs) -> RTDataModule:
    source = {"path": str(path), "format": "rt_proforma", "unit": "s"}
    cv = {"scheme": "kfold", "n_splits": N_SPLITS, "fold": fold, "val_fraction": 0.2}
    dm = RTDataModule([source], split={"seed": 7}, cv=cv, batch_size=8, **kwargs)
    dm.setup()
    return dm


def test_a_fold_scales_rt_on_its_training_rows_only(tmp_path: Path) -> None:
    path, rows = _rt_table(tmp_path)
    sequences = [parse_proforma(p).sequence for p, _ in rows]
    tested: list[str] = []
    for fold in range(N_SPLITS):
        dm = _fold(path, fold)
        parts = {k: {s.peptide.sequence for s in v.samples} for k, v in dm.datasets.items()}
        assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"])
        assert not parts["val"] & parts["test"]
        cv = CVConfig("kfold", N_SPLITS, fold=fold, val_fraction=0.2, seed=7)
        labels = fold_labels(cv, sequences)
        train_rt = [rt / 60 for (_, rt), lab in zip(rows, labels, strict=True) if lab == "train"]
        kwargs = dm.model_kwargs()
        assert kwargs["rt_mean"] == pytest.approx(np.mean(train_rt), rel=1e-12)
        assert kwargs["rt_std"] == pytest.approx(np.std(train_rt), rel=1e-12)
        all_rt = np.mean([rt / 60 for _, rt in rows])
        assert abs(kwargs["rt_mean"] - all_rt) > 1e-9  # the held-out rows really are left out
        assert dm.split_name == f"peptide_grouped_kfold4_seed7_fold{fold}"
        assert dm.lineage().extras["cv"] == {"scheme": cv.name, "fold": fold}
        tested += [s.peptide.to_proforma() for s in dm.datasets["test"].samples]
    assert sorted(tested) == sorted(p for p, _ in rows)  # each peptide tested in one fold


def test_the_stack_and_predictions_of_a_fold(tmp_path: Path) -> None:
    path, _ = _rt_table(tmp_path)
    dm = _fold(path, 1)
    model = RTEnsembleModel(
        **dm.model_kwargs(),
        embed_dim=4,
        conv_channels=4,
        n_conv=1,
        lstm_hidden=4,
        pca_components=2,
        random_forest={"n_estimators": 3},
        gradient_boosting={"n_estimators": 3},
    )
    seen: list[str] = []
    fit_stack = model.fit_stack

    def spy(loader):
        seen.extend(p for batch in loader for p in batch["peptides"])
        fit_stack(loader)

    model.fit_stack = spy
    model.trainer = SimpleNamespace(checkpoint_callback=None, datamodule=dm)
    model.on_fit_end()
    train = [s.peptide.to_proforma() for s in dm.datasets["train"].samples]
    assert sorted(seen) == sorted(train) and model.stack is not None
    model.eval()
    batch = next(iter(dm.loader("test")))
    out = model.predict_step(batch, 0)
    assert set(out) == {"peptide", "rt", "predicted_rt"}
    assert out["peptide"] == batch["peptides"] and torch.equal(out["rt"], batch["rt"])
    assert out["predicted_rt"].shape == (len(batch["peptides"]),)
    with torch.no_grad():
        assert torch.allclose(out["predicted_rt"], model.predict_rt(batch))
