"""A trained RT model as a predictor: ProForma peptides in, retention times out.

``deepms predict MODEL --input peptides.csv --output rt.csv`` reads a ``peptide`` column (ProForma,
e.g. ``PEPM[Oxidation]K``) and writes ``peptide,predicted_rt,rt_unit``: the unit is the model's
(``min``, or ``irt`` for iRT-trained models) and also sits in the registered model's metadata.
:meth:`RTPredictor.predict` adds ``NormalizedRetentionTime`` (the same values) so the model can
serve as ``deepms predict ... --rt-model`` for spectral libraries. Peptides are sorted by length
and predicted in large batches under ``torch.inference_mode``; rows come back in input order.
Ensemble checkpoints also carry a pickled scikit-learn stack: load only checkpoints you trust.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepms.chem import Peptide, parse_proforma
from deepms.io.atomic import atomic_path
from deepms.io.library import RT_COLUMN
from deepms.registry.options import BATCH_OPTIONS, Option, with_default
from deepms.registry.predictor import (
    BatchPredictor,
    ModelLoadError,
    json_safe,
    modification_entries,
)

OUTPUT_COLUMNS = ("peptide", "predicted_rt", "rt_unit")
CAM_NAME = "Carbamidomethyl"
CAM = f"{CAM_NAME}@C"


class RTPredictor(BatchPredictor):
    """A loaded :class:`RTModel` (or :class:`RTEnsembleModel`) behind the Predictor interface."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {"peptide": ("string", True)}
    params: ClassVar[dict[str, Any]] = {}
    model_class: ClassVar[str] = "deepms.tasks.deeprt.model.RTModel"
    options: ClassVar[tuple[Option, ...]] = (
        with_default(BATCH_OPTIONS[0], 1024),
        *BATCH_OPTIONS[1:],
    )

    def __init__(self, model: Any, batch_size: int = 1024, precision: str = "32") -> None:
        self.model = model.eval()
        self.encoder = model.encoder
        self.rt_unit = str(model.hparams.rt_unit)
        self.batch_size, self.precision = batch_size, "32"
        self.configure(precision=precision)

    @classmethod
    def legacy_model_class(cls, checkpoint: dict[str, Any]) -> str:
        """Before checkpoints recorded their class, an ensemble checkpoint was the one carrying
        its fitted stack (``sklearn_stack``); any other is a plain :class:`RTModel`."""
        if "sklearn_stack" in checkpoint:
            return "deepms.tasks.deeprt.model.RTEnsembleModel"
        return cls.model_class

    @classmethod
    def trusts(cls, model_class: type) -> bool:
        """An ensemble's fitted scikit-learn stack is pickled bytes, unpickled when the model is
        built (load only ensemble checkpoints you trust; module doc)."""
        from deepms.tasks.deeprt.model import RTEnsembleModel

        return issubclass(model_class, RTEnsembleModel)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **options: Any) -> RTPredictor:
        predictor = super().from_checkpoint(path, **options)
        if getattr(predictor.model, "stack", "") is None:  # an ensemble predicts with its stack
            raise ModelLoadError(f"{path}: ensemble checkpoint without its fitted stack")
        return predictor

    def describe(self) -> dict[str, Any]:
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "hyperparameters": json_safe(dict(self.model.hparams)),
            "rt_unit": self.rt_unit,
            "output_columns": list(OUTPUT_COLUMNS),
            "modifications": modification_entries(self.encoder.modifications),
        }

    def check_description(self, description: dict[str, Any]) -> None:
        if description.get("rt_unit") not in (None, self.rt_unit):
            raise ModelLoadError(f"stored RT unit {description['rt_unit']}, model {self.rt_unit}")
        stored = set(description.get("modifications") or {})
        if stored and stored != set(self.encoder.modifications):
            raise ModelLoadError("the model's modification vocabulary differs from its metadata")

    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame({"peptide": ["PEPTIDEK", "LGEYGFQNALIVR"]})

    def _as_trained(self, peptide: Any) -> Any:
        """The RT files write carbamidomethylated cysteine as plain C: a model that never saw
        ``Carbamidomethyl@C`` reads ``C[Carbamidomethyl]`` (a library's fixed mod) as C."""
        if CAM in self.encoder.index or not any(m and m.name == CAM_NAME for m in peptide.mods):
            return peptide
        mods = [
            None
            if m and m.name == CAM_NAME and 0 < i <= len(peptide) and peptide.sequence[i - 1] == "C"
            else m
            for i, m in enumerate(peptide.mods)
        ]
        return Peptide(peptide.sequence, tuple(mods))

    def _batch(self, peptides: list[Any]) -> dict[str, Any]:
        from deepms.tasks.deeprt.data import encode_peptides  # the training batch layout

        return encode_peptides(peptides, self.encoder)

    def predict_peptides(self, peptides: list[Any]) -> np.ndarray:
        """RT (in :attr:`rt_unit`) of parsed peptides, in their order."""

        def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            batch = self._batch([peptides[r] for r in rows])
            return rows, self.model.predict_rt(batch).float().numpy()

        parts = self._batched([len(p.sequence) for p in peptides], run)
        return self._in_input_order(parts, len(peptides), np.float64)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``peptide, predicted_rt, rt_unit`` (+ ``NormalizedRetentionTime``), in input order."""
        if "peptide" not in frame.columns:
            raise ValueError(f"input lacks a 'peptide' column; has {list(frame.columns)}")
        texts = frame["peptide"].astype(str).tolist()
        peptides = [self._as_trained(parse_proforma(t)) for t in texts]
        rt = self.predict_peptides(peptides) if texts else np.zeros(0)
        return pd.DataFrame(
            {"peptide": texts, "predicted_rt": rt, "rt_unit": self.rt_unit, RT_COLUMN: rt}
        )

    def write_output(self, tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]):
        """CSV (or TSV by extension) of ``peptide,predicted_rt,rt_unit``, written atomically."""
        path = Path(path)
        sep = "\t" if path.suffix == ".tsv" else ","
        count = 0
        with atomic_path(path) as partial, open(partial, "w", newline="") as handle:
            handle.write(sep.join(OUTPUT_COLUMNS) + "\n")
            for table in tables:
                table[list(OUTPUT_COLUMNS)].to_csv(handle, sep=sep, index=False, header=False)
                count += len(table)
        return {"peptides": count}
