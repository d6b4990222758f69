"""The dia datamodule: OpenSWATH peak groups, standardised sub-scores, cross-fitting folds.

``sources`` are peak-group tables (``format: pyprophet_tsv`` or ``osw``, read by
:mod:`deepms.io.openswath` into its standard columns plus ``main_var_*``/``var_*`` sub-scores;
several files are stacked). There is no train/val/test split: semi-supervised target-decoy
scoring learns from the file it scores, and honesty comes from **cross-fitting** instead. Every
row gets a fold in 0..K-1, drawn by ``pair_id`` (a target precursor and its decoy share a fold, so
a network never learns a decoy whose target it then scores, nor the reverse); network k of the
model trains on the other folds and alone scores fold k. All three loaders therefore serve the
whole table (the model masks what each network may learn from).

Sub-scores are standardised with the mean and standard deviation of the whole table: no label
(decoy flag) enters them, and every row is a training row of K-1 networks; the statistics are
saved with the model so a new file is scaled the same way. ``entrapment`` (see
:mod:`deepms.tasks.dia.entrapment`) turns a seeded half of the decoy pairs into targets flagged in
a column the model never reads.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from deepms.errors import DeepMSError
from deepms.tasks.dia.entrapment import split_entrapment
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)

#: PyProphet's main score of OpenSWATH: iteration 0 ranks by it when present
MAIN_SCORE = "main_var_xx_swath_prelim_score"


class DiaConfigError(DeepMSError, ValueError):
    """The dia data config asks for something the peak groups cannot give."""


def crossfit_folds(pair_ids: Sequence[str], n_folds: int, seed: int) -> np.ndarray:
    """A fold per row, drawn per ``pair_id`` (sorted, seeded permutation, round robin)."""
    if n_folds < 2:
        raise DiaConfigError(f"data.folds={n_folds}: cross-fitting needs at least 2 folds")
    pair_ids = np.asarray([str(p) for p in pair_ids], dtype=object)
    unique = np.array(sorted(set(pair_ids.tolist())), dtype=object)
    if len(unique) < n_folds:
        raise DiaConfigError(f"{len(unique)} target-decoy pairs cannot fill {n_folds} folds")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[i]: position % n_folds for position, i in enumerate(order)}
    return np.array([fold_of[p] for p in pair_ids], dtype=np.int64)


class PeakGroupDataset(Dataset):
    """Standardised sub-scores and the row index (the model looks its labels up by index)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self.lengths = [1] * len(self.x)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.x[index], "index": index}


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """{"x": [B, F], "index": [B]}."""
    return {
        "x": torch.stack([it["x"] for it in items]),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }


def standardise(
    frame: pd.DataFrame, columns: Sequence[str], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """``(x - mean) / std`` of the named columns (NaN -> 0, the mean), float32."""
    x = frame[list(columns)].to_numpy(dtype=np.float64)
    z = (x - np.asarray(mean)) / np.asarray(std)
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


class DiaDataModule(TaskDataModule):
    """Peak groups -> standardised sub-scores, K cross-fitting folds by pair, entrapment flags."""

    split_kind = "pair_crossfit"
    collate_fn = staticmethod(collate)

    def __init__(
        self,
        folds: int = 3,
        score_columns: Sequence[str] | None = None,
        entrapment: Mapping[str, Any] | None = None,
        **common: Any,
    ) -> None:
        """``folds``: K networks; ``score_columns``: the sub-scores to use (default: all of
        every source); ``entrapment``: ``{enabled, fraction, seed}``."""
        super().__init__(**common)
        self.folds = int(folds)
        self.score_columns_wanted = [str(c).lower() for c in score_columns or ()]
        spec = dict(entrapment or {})
        self.entrapment = {
            "enabled": bool(spec.get("enabled", False)),
            "fraction": float(spec.get("fraction", 0.5)),
            "seed": int(spec.get("seed", self.split_seed)),
        }
        self.frame: pd.DataFrame | None = None
        self.score_columns: list[str] = []
        self.mean: list[float] = []
        self.std: list[float] = []

    @property
    def split_name(self) -> str:
        return f"{self.split_kind}_{self.folds}fold_seed{self.split_seed}"

    def _read(self, dropped: Counter) -> tuple[pd.DataFrame, list[str]]:
        from deepms.io.openswath import check_peak_groups

        frames, columns = [], None
        for index, opened in self.open_sources():
            options = dict(opened.spec.options)
            for table in opened.records(self.on_error, **options):
                if not isinstance(table, pd.DataFrame):
                    raise DiaConfigError(
                        f"dia source {opened.spec.describe()}: format {opened.format.name!r} "
                        "does not yield peak-group tables; use pyprophet_tsv or osw"
                    )
                check_peak_groups(table, table.attrs.get("path", opened.spec.describe()))
                found = list(
                    table.attrs.get("score_columns")
                    or [c for c in table.columns if c.startswith(("main_var_", "var_"))]
                )
                columns = found if columns is None else [c for c in columns if c in found]
                frames.append(table.assign(source=index))
        if not frames:
            raise DiaConfigError("dia: data.sources gave no peak-group table")
        frame = pd.concat(frames, ignore_index=True)
        if self.score_columns_wanted:
            missing = [c for c in self.score_columns_wanted if c not in frame.columns]
            if missing:
                raise DiaConfigError(f"dia: data.score_columns {missing} not in the sources")
            columns = list(self.score_columns_wanted)
        if not columns:
            raise DiaConfigError("dia: the sources share no sub-score column")
        return frame, list(columns)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage(
            "+".join(dict.fromkeys(self.source_names)), entrapment=dict(self.entrapment)
        )
        dropped: Counter = Counter()
        frame, columns = self._read(dropped)
        frame["decoy"] = frame["decoy"].astype(bool)
        frame["entrapment"] = False
        if self.entrapment["enabled"]:
            frame = split_entrapment(frame, self.entrapment["fraction"], self.entrapment["seed"])
        frame["fold"] = crossfit_folds(frame["pair_id"].astype(str), self.folds, self.split_seed)
        values = frame[columns].to_numpy(dtype=np.float64)
        self.mean = np.nanmean(values, axis=0).tolist()
        std = np.nanstd(values, axis=0)
        self.std = np.where(std > 0, std, 1.0).tolist()
        self.frame, self.score_columns = frame.reset_index(drop=True), columns
        dataset = PeakGroupDataset(standardise(frame, columns, self.mean, self.std))
        self.datasets = {"train": dataset, "val": dataset, "test": dataset}
        lineage.n_samples = {"peak_groups": len(frame)}
        lineage.count_dropped(dropped)
        lineage.extras.update(
            score_columns=columns,
            folds=self.folds,
            targets=int((~frame["decoy"] & ~frame["entrapment"]).sum()),
            decoys=int(frame["decoy"].sum()),
            entrapment_rows=int(frame["entrapment"].sum()),
            groups=int(frame["group_id"].nunique()),
            rows_per_fold=np.bincount(frame["fold"], minlength=self.folds).tolist(),
        )
        log.info(
            "dia data: %d peak groups, %d sub-scores, %d folds",
            len(frame),
            len(columns),
            self.folds,
        )

    def model_kwargs(self) -> dict[str, Any]:
        """Score columns, scaler and fold count (saved with the model for prediction)."""
        if self.frame is None:
            raise RuntimeError("DiaDataModule.model_kwargs before setup()")
        return {
            "score_columns": list(self.score_columns),
            "scaler_mean": [float(v) for v in self.mean],
            "scaler_std": [float(v) for v in self.std],
            "n_folds": self.folds,
        }
