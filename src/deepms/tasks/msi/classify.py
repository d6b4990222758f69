"""An IsotopeNet-style spectrum classifier (Behrmann et al. 2018) and its comparators.

IsotopeNet reads a binned spectrum with a residual 1-D CNN so that local peak shapes (isotope
envelopes) are features wherever they occur. Here: a stem convolution, residual stages (two
convolutions and a skip, then max pooling), global average and max pooling, a linear head over
the classes. On every fold's test part it also fits, on the same training rows, NMF + LDA (the
paper's baseline) and an L2 logistic regression, and a per-m/z sensitivity map (gradient x input
of the positive-class logit, mean |.| over the fold's spectra: which m/z drive the decision).
Per-fold figures become ``test_<method>_<metric>``; ``cv=`` aggregates them with t-intervals and
:func:`summarize_folds` adds pooled out-of-fold figures with a patient bootstrap interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from deepms.training.module import TaskModule

METHODS = ("cnn", "nmf_lda", "logreg")


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=pad),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.Conv1d(c_out, c_out, kernel, padding=pad),
            nn.BatchNorm1d(c_out),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1)
        self.pool = nn.MaxPool1d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.body(x) + self.skip(x)))


class IsotopeNet(nn.Module):
    def __init__(self, n_classes: int, channels: Sequence[int], kernel: int, dropout: float):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(1, channels[0], kernel, padding=kernel // 2),
            nn.BatchNorm1d(channels[0]),
            nn.ReLU(),
        )
        widths = [channels[0], *channels]
        self.stages = nn.Sequential(
            *[ResidualBlock(widths[i], widths[i + 1], kernel) for i in range(len(channels))]
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(x[:, None, :]))
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


def nmf_lda(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, k: int, seed: int):
    """P(positive) from LDA on NMF coefficients (NMF fitted on the training rows only)."""
    from sklearn.decomposition import NMF
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nmf = NMF(
            n_components=min(k, len(x_train)), init="nndsvda", max_iter=500, random_state=seed
        )
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        lda.fit(nmf.fit_transform(np.clip(x_train, 0, None)), y_train)
        return lda.predict_proba(nmf.transform(np.clip(x_test, 0, None)))[:, 1]


def logreg(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int):
    """P(positive) from a standardised L2 logistic regression (scaler fitted on training rows)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    return model.fit(x_train, y_train).predict_proba(x_test)[:, 1]


def scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """accuracy (at 0.5), Brier and log loss always; AUROC where both classes are present (a
    leave-one-patient-out fold holds one patient, hence one class: NaN there)."""
    from sklearn.metrics import roc_auc_score

    p, y = np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7), np.asarray(y)
    out = {
        "accuracy": float(((p >= 0.5) == y).mean()),
        "brier": float(((p - y) ** 2).mean()),
        "log_loss": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()),
    }
    out["auroc"] = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")
    return out


class SpectrumClassifier(TaskModule):
    """IsotopeNet-style CNN: binned spectrum -> class logits; baselines at test time."""

    def __init__(
        self,
        n_bins: int,
        mz: Sequence[float],
        classes: Sequence[str],
        featurize: dict[str, Any],
        channels: Sequence[int] = (8, 16, 32, 32),
        kernel: int = 7,
        dropout: float = 0.3,
        nmf_components: int = 5,
        baselines: Sequence[str] = ("nmf_lda", "logreg"),
        top_mz: int = 20,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        self.save_hyperparameters()
        self.net = IsotopeNet(len(classes), list(channels), int(kernel), float(dropout))
        self.probability_column = f"p_{classes[1]}"
        self._outputs: list[tuple[torch.Tensor, torch.Tensor, list[str]]] = []
        self._fold_columns: dict[str, dict[str, float]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch["x"]), batch["label"])
        self.log("train_loss", loss, batch_size=len(batch["label"]))
        return loss

    def _collect(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch["x"])
        loss = nn.functional.cross_entropy(logits, batch["label"])
        self.log(f"{stage}_loss", loss, batch_size=len(batch["label"]))
        p = torch.softmax(logits, -1)[:, 1].detach().cpu()
        self._outputs.append((p, batch["label"].cpu(), list(batch["ids"])))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self._outputs:
            p = torch.cat([o[0] for o in self._outputs]).numpy()
            y = torch.cat([o[1] for o in self._outputs]).numpy()
            self.log("val_accuracy", scores(p, y)["accuracy"])
        self._outputs = []

    def on_test_epoch_start(self) -> None:
        self._outputs = []

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, "test")

    def on_test_epoch_end(self) -> None:
        if not self._outputs:
            return
        p = torch.cat([o[0] for o in self._outputs]).numpy()
        y = torch.cat([o[1] for o in self._outputs]).numpy()
        ids = [i for o in self._outputs for i in o[2]]
        self._outputs = []
        metrics = {f"cnn_{k}": v for k, v in scores(p, y).items()}
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "matrix"):
            metrics |= self._baselines(dm, ids)
            self._sensitivity(dm)
        self.log_dict({f"test_{k}": v for k, v in metrics.items()})

    def _baselines(self, dm: Any, ids: list[str]) -> dict[str, float]:
        x_train, y_train, _ = dm.matrix("train")
        x_test, y_test, test_ids = dm.matrix("test")
        seed = int(torch.initial_seed() % 2**31)
        probabilities: dict[str, np.ndarray] = {}
        if "nmf_lda" in self.hparams.baselines:
            k = int(self.hparams.nmf_components)
            probabilities["nmf_lda"] = nmf_lda(x_train, y_train, x_test, k, seed)
        if "logreg" in self.hparams.baselines:
            probabilities["logreg"] = logreg(x_train, y_train, x_test, seed)
        self._fold_columns = {
            i: {f"p_{name}": float(p[j]) for name, p in probabilities.items()}
            | {"group": dm.datasets["test"].groups[j]}
            for j, i in enumerate(test_ids)
        }
        out = {}
        for name, p in probabilities.items():
            out |= {f"{name}_{k}": v for k, v in scores(p, y_test).items()}
        return out

    def sensitivity(self, x: torch.Tensor) -> np.ndarray:
        """Gradient x input of (positive - negative logit), mean |.| per bin over ``x``."""
        was = self.training
        self.eval()
        # Lightning tests under inference mode: leave it for this one backward pass
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone().to(self.device).requires_grad_(True)
            logits = self(x)
            (logits[:, 1] - logits[:, 0]).sum().backward()
        self.train(was)
        return (x.grad * x).abs().mean(0).detach().cpu().numpy()

    def _sensitivity(self, dm: Any) -> None:
        if not self.trainer.is_global_zero or not self.loggers:
            return
        import pandas as pd

        from deepms.tasks.msi.pictures import sensitivity_plot
        from deepms.tracking.mlflow_setup import log_figure, log_text

        x = torch.cat([dm.datasets[p].x for p in ("train", "test") if len(dm.datasets[p])])
        s = self.sensitivity(x)
        mz = np.asarray(self.hparams.mz)
        top = np.argsort(-s)[: int(self.hparams.top_mz)]
        table = pd.DataFrame({"mz": mz[top], "sensitivity": s[top]})
        log_text(self.loggers, table.to_csv(index=False), "sensitivity_top_mz.csv")
        log_figure(
            self.loggers,
            sensitivity_plot(mz, s, x.numpy().mean(0), top[:5]),
            "plots/sensitivity.png",
        )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Out-of-fold rows: id, label, p_<positive> (CNN) and the baselines' p_<method>."""
        p = torch.softmax(self(batch["x"]), -1)[:, 1]
        out: dict[str, Any] = {"id": list(batch["ids"]), "label": batch["label"], "p_cnn": p}
        for name in ("group", *[f"p_{b}" for b in self.hparams.baselines]):
            out[name] = [self._fold_columns.get(i, {}).get(name, float("nan")) for i in out["id"]]
        return out

    @staticmethod
    def summarize_folds(oof: Any, folds: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Pooled out-of-fold accuracy and AUROC per method with 95 % percentile intervals from
        resampling patients (2,000 draws): replicates of a patient are not independent."""
        import pandas as pd

        rng = np.random.default_rng(0)
        groups = oof["group"].astype(str).to_numpy()
        unique = np.unique(groups)
        rows, metrics = [], {}
        for method in [c[2:] for c in oof.columns if c.startswith("p_")]:
            p, y = oof[f"p_{method}"].to_numpy(float), oof["label"].to_numpy(int)
            point = scores(p, y)
            draws: dict[str, list[float]] = {"accuracy": [], "auroc": []}
            for _ in range(2000):
                pick = rng.choice(unique, len(unique), replace=True)
                idx = np.concatenate([np.flatnonzero(groups == g) for g in pick])
                s = scores(p[idx], y[idx])
                for key in draws:
                    draws[key].append(s[key])
            for key in draws:
                values = np.asarray(draws[key])
                values = values[np.isfinite(values)]
                lo, hi = np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan)
                metrics |= {
                    f"oof_{method}_{key}": point[key],
                    f"oof_{method}_{key}_ci95_low": lo,
                    f"oof_{method}_{key}_ci95_high": hi,
                }
                rows.append(
                    {
                        "method": method,
                        "metric": key,
                        "value": point[key],
                        "ci95_low": lo,
                        "ci95_high": hi,
                        "n_spectra": len(y),
                        "n_patients": len(unique),
                    }
                )
        from deepms.tasks.msi.pictures import oof_probability_plot

        figure = oof_probability_plot(oof)
        return metrics, {"pooled_oof": pd.DataFrame(rows), "oof_probabilities": figure}
