"""A trained dia ensemble as a predictor: a new run's peak groups in, scores and q-values out.

``deepms predict models:/dia@champion --input run.osw --output scored.tsv`` reads the whole file
(``.osw`` or PyProphet ``.tsv``/``.txt`` through :func:`deepms.io.openswath.read_peak_groups`;
q-values need every peak group of the file at once, so it is one chunk), standardises the
sub-scores with the training statistics saved in the model, scores each peak group with the mean
logit of the K cross-fitted networks (none of them saw this file) and computes the q-values (TDC
and pi0), PEP and ranks on the file's own decoys: every target and decoy row is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from deepms.errors import DeepMSError
from deepms.registry.options import BATCH_OPTIONS, Option
from deepms.registry.predictor import BatchPredictor, ModelLoadError
from deepms.tasks.dia.data import standardise
from deepms.tasks.dia.scoring import assess


class MissingScoreError(DeepMSError, ValueError):
    """The input lacks sub-scores the model was trained on."""


class DiaPredictor(BatchPredictor):
    """A loaded :class:`~deepms.tasks.dia.model.DiaModel` and its scaler."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "group_id": ("string", True),
        "decoy": ("boolean", True),
    }
    model_class: ClassVar[str] = "deepms.tasks.dia.model.DiaModel"
    options: ClassVar[tuple[Option, ...]] = (
        *BATCH_OPTIONS,
        Option("plus_one", bool, False, "TDC q-values with (#decoys + 1) / #targets"),
    )

    def __init__(self, model: Any, batch_size: int = 4096, precision: str = "32") -> None:
        self.model = model.eval()
        hparams = model.hparams
        self.score_columns = [str(c) for c in hparams["score_columns"]]
        self.mean = [float(v) for v in hparams["scaler_mean"]]
        self.std = [float(v) for v in hparams["scaler_std"]]
        self.input_schema = {
            "group_id": ("string", True),
            "decoy": ("boolean", True),
            **{c: ("double", True) for c in self.score_columns},
        }
        self.batch_size, self.precision, self.plus_one = batch_size, "32", False
        self.configure(precision=precision)

    def configure(
        self,
        batch_size: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
        plus_one: bool | None = None,
    ) -> None:
        super().configure(batch_size, precision, threads)
        if plus_one is not None:
            self.plus_one = bool(plus_one)

    def describe(self) -> dict[str, Any]:
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "score_columns": self.score_columns,
            "n_networks": len(self.model.nets),
            "n_folds": int(self.model.n_folds),
        }

    def check_description(self, description: dict[str, Any]) -> None:
        stored = description.get("score_columns")
        if stored is not None and list(stored) != self.score_columns:
            raise ModelLoadError("the model's score columns differ from its stored description")

    def input_example(self) -> pd.DataFrame:
        """A target and its decoy at the training means."""
        values = {c: [m, m] for c, m in zip(self.score_columns, self.mean, strict=True)}
        return pd.DataFrame(
            {"group_id": ["1_run0", "DECOY_1_run0"], "decoy": [False, True], **values}
        )

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """The whole peak-group file as one table (q-values need all of it)."""
        from deepms.io.openswath import read_peak_groups

        if options:
            raise ValueError(f"{type(self).__name__}: input options {sorted(options)} unused")

        def one() -> Iterator[pd.DataFrame]:
            yield read_peak_groups(Path(path))

        return one()

    @staticmethod
    def _standard(frame: pd.DataFrame) -> pd.DataFrame:
        """Fill the identification columns a plain table may lack (from group_id)."""
        frame = frame.rename(
            columns={
                c: c.lower() for c in frame.columns if c.lower().startswith(("main_var_", "var_"))
            }
        )
        if "group_id" not in frame or "decoy" not in frame:
            raise MissingScoreError("the input needs group_id and decoy columns")
        out = frame.copy()
        out["decoy"] = out["decoy"].astype(str).str.lower().isin(["1", "true", "1.0"])
        groups = out["group_id"].astype(str)
        if "precursor_id" not in out:
            out["precursor_id"] = groups.str.replace(r"_run\d+$", "", regex=True)
        if "pair_id" not in out:
            out["pair_id"] = out["precursor_id"].astype(str).str.replace("^DECOY_", "", regex=True)
        if "feature_id" not in out:
            out["feature_id"] = np.arange(len(out)).astype(str)
        for column, default in (("run", ""), ("peptide", "")):
            if column not in out:
                out[column] = default
        return out

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Mean logit of the K networks for every row."""
        missing = [c for c in self.score_columns if c not in frame.columns]
        if missing:
            raise MissingScoreError(
                f"the input lacks {len(missing)} sub-score(s) the model uses: {missing[:5]}"
            )
        x = torch.from_numpy(standardise(frame, self.score_columns, self.mean, self.std))
        out = np.zeros(len(frame))
        with self._inference():
            for start in range(0, len(frame), self.batch_size):
                logits = self.model(x[start : start + self.batch_size]).float()
                out[start : start + len(logits)] = logits.mean(-1).numpy()
        return out

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Every row with score, rank, q-values (TDC, pi0) and PEP at three levels."""
        frame = self._standard(frame)
        table, _ = assess(frame, self.scores(frame), plus_one=self.plus_one)
        return table
