"""A trained biomarker DBN as a predictor: a cohort matrix in, class probabilities out.

``deepms predict models:/biomarker@champion --input cohort.csv --output probs.csv`` reads a matrix
(CSV, TSV or parquet; samples as rows, a sample id column and one column per protein, named as in
training), applies the preprocessing fitted on the model's training rows (log2, missing filter,
imputation, scaling, selection; saved in the model) and writes ``sample_id``, ``p_<positive>``,
``predicted_class``, ``imputed_proteins`` and the input values of the model's panel (its top
``panel_size`` proteins by An et al.'s weight ranking). A protein the model uses that the input
lacks stops the run with its name, unless ``--on-missing impute`` fills it with the training
imputation value; which proteins were imputed is written on every row.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from deepms.errors import DeepMSError
from deepms.registry.options import BATCH_OPTIONS, Option
from deepms.registry.predictor import BatchPredictor, ModelLoadError
from deepms.tasks.biomarker.dbn import weight_ranking
from deepms.tasks.biomarker.preprocess import Preprocessor

ON_MISSING = ("error", "impute")
ID_CANDIDATES = ("sample_id", "Sample ID", "sample", "id")


class MissingProteinError(DeepMSError, ValueError):
    """The input lacks proteins the model needs (and ``--on-missing impute`` was not chosen)."""


class BiomarkerPredictor(BatchPredictor):
    """A loaded :class:`BiomarkerModel` and its fitted preprocessing."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {"sample_id": ("string", False)}
    model_class: ClassVar[str] = "deepms.tasks.biomarker.model.BiomarkerModel"
    options: ClassVar[tuple[Option, ...]] = (
        *BATCH_OPTIONS,
        Option("on_missing", str, "error", "a protein the model needs is absent from the input: "
               "error, or impute it with the training imputation value (recorded in the output)",
               choices=ON_MISSING),
        Option("id_column", str, None, "sample id column (default: sample_id, 'Sample ID', "
               "sample, id, else the first text column)"),
    )  # fmt: skip

    def __init__(self, model: Any, batch_size: int = 256, precision: str = "32") -> None:
        self.model = model.eval()
        hparams = model.hparams
        self.preprocessor = Preprocessor.from_dict(hparams["preprocessing"])
        self.feature_names = [str(n) for n in hparams["feature_names"]]
        self.classes = [str(c) for c in hparams["classes"]]
        self.probability_column = model.probability_column
        scores = weight_ranking(model.dbn, model.head.weight).cpu().numpy()
        order = np.argsort(-scores, kind="stable")[: int(hparams.get("panel_size", 20))]
        self.panel = [self.feature_names[i] for i in order]
        # the id and every input column of the fitted preprocessing (MLflow signature)
        self.input_schema = {
            "sample_id": ("string", False),
            **{name: ("double", False) for name in self.preprocessor.input_names},
        }
        self.batch_size, self.precision = batch_size, "32"
        self.on_missing, self.id_column = "error", None
        self.configure(precision=precision)

    def configure(
        self,
        batch_size: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
        on_missing: str | None = None,
        id_column: str | None = None,
    ) -> None:
        """The batch options, plus what to do with absent proteins and where the ids are."""
        super().configure(batch_size, precision, threads)
        if on_missing is not None and on_missing not in ON_MISSING:
            raise ValueError(f"on_missing={on_missing!r}: use one of {ON_MISSING}")
        self.on_missing = str(on_missing or self.on_missing)
        self.id_column = id_column or self.id_column

    def describe(self) -> dict[str, Any]:
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "label": str(self.model.hparams["label"]),
            "classes": self.classes,
            "features": self.feature_names,
            "panel": self.panel,
        }

    def check_description(self, description: dict[str, Any]) -> None:
        stored = description.get("features")
        if stored is not None and list(stored) != self.feature_names:
            raise ModelLoadError("the model's feature list differs from its stored description")

    def input_example(self) -> pd.DataFrame:
        """Two samples at the training means (back on the input scale)."""
        pre, values = self.preprocessor, {}
        for position, column in enumerate(pre.kept if pre.kept is not None else []):
            name = pre.input_names[column]
            centre = float(pre.mean[position]) if pre.mean is not None else 0.0
            logged = pre.log2 and name not in pre.no_log
            values[name] = [2.0**centre if logged else centre] * 2
        return pd.DataFrame({"sample_id": ["sample_1", "sample_2"], **values})

    def _ids(self, frame: pd.DataFrame) -> pd.Series:
        if self.id_column is not None:
            if self.id_column not in frame.columns:
                raise ValueError(
                    f"id column {self.id_column!r} not in the input; columns start "
                    f"{list(frame.columns[:5])}"
                )
            return frame[self.id_column].astype(str)
        for name in ID_CANDIDATES:
            if name in frame.columns:
                return frame[name].astype(str)
        text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if not text:
            raise ValueError(
                f"no sample id column: name one with --id-column (looked for {ID_CANDIDATES} "
                "and for a text column)"
            )
        return frame[text[0]].astype(str)

    def _matrix(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """The preprocessor's input columns as floats (absent ones NaN) and the needed proteins
        the input lacks (an error unless ``on_missing`` is ``impute``)."""
        pre = self.preprocessor
        absent = [name for name in self.feature_names if name not in frame.columns]
        if absent and self.on_missing != "impute":
            shown = ", ".join(repr(n) for n in absent[:5])
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            raise MissingProteinError(
                f"the input lacks {len(absent)} protein(s) the model uses: {shown}{more}; "
                "add them, or pass --on-missing impute to fill them with the training "
                "imputation value (recorded in the output's imputed_proteins column)"
            )
        if absent and pre.impute == "none":
            raise MissingProteinError(
                f"--on-missing impute: this model was trained without imputation "
                f"(preprocess.impute=none), so {absent[0]!r} cannot be filled"
            )
        x = np.full((len(frame), len(pre.input_names)), np.nan)
        for j, name in enumerate(pre.input_names):
            if name in frame.columns:
                try:
                    x[:, j] = pd.to_numeric(frame[name], errors="raise").to_numpy(float)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"column {name!r} has a non-numeric cell: {exc}") from exc
        return x, absent

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """sample_id, p_<positive>, predicted_class, imputed_proteins, the panel's input values."""
        ids = self._ids(frame)
        x, absent = self._matrix(frame)
        features = self.preprocessor.transform(x) if len(frame) else np.zeros((0, 0), np.float32)
        if np.isnan(features).any():
            raise ValueError("missing values remain after preprocessing (model without imputation)")
        probabilities = np.zeros(len(frame), dtype=np.float64)
        with self._inference():
            for start in range(0, len(frame), self.batch_size):
                rows = torch.from_numpy(features[start : start + self.batch_size])
                logits = self.model(rows).float()
                probabilities[start : start + len(rows)] = torch.sigmoid(logits).numpy()
        threshold = float(self.model.hparams.get("threshold", 0.5))
        out = pd.DataFrame(
            {
                "sample_id": ids.to_numpy(),
                self.probability_column: probabilities,
                "predicted_class": np.where(
                    probabilities >= threshold, self.classes[1], self.classes[0]
                ),
                "imputed_proteins": ";".join(absent),
            }
        )
        for name in self.panel:
            values = frame[name] if name in frame.columns else np.nan
            out[name] = pd.to_numeric(values) if name in frame.columns else values
        return out
