"""A trained RT model as a predictor: ProForma peptides in, retention times out.

``deepms predict MODEL --input peptides.csv --output rt.csv`` reads a ``peptide`` column (ProForma,
e.g. ``PEPM[Oxidation]K``) and writes ``peptide,predicted_rt,rt_unit``: the unit is the model's
(``min``, or ``irt`` for iRT-trained models) and also sits in the registered model's metadata.
:meth:`RTPredictor.predict` adds ``NormalizedRetentionTime`` (the same values) so the model can
serve as ``deepms predict ... --rt-model`` for spectral libraries. Peptides are sorted by length
and predicted in large batches under ``torch.inference_mode``; rows come back in input order.
Ensemble checkpoints also carry a pickled scikit-learn stack: load only checkpoints you trust.

A model trained on several LC systems predicts with its first system's head unless ``--system``
names another. ``--calibrate reference.csv`` (columns ``peptide`` and ``rt``, the observed RT in
the user's unit) fits a map from the model's heads to the user's system (:mod:`.calibration`,
``--calibration ridge|piecewise|linear``) before predicting: the output's ``rt_unit`` is then
``calibrated`` and the fitted map is written to ``OUTPUT.calibration.json``.
``--average-with MODEL[,MODEL...]`` averages the model with others trained alike (e.g. other seeds:
an ensemble of three cuts DLOmix MAE by about 8 %); calibration then fits the averaged heads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepms.chem import Peptide, parse_proforma
from deepms.errors import DataFormatError
from deepms.io.atomic import atomic_path
from deepms.io.library import RT_COLUMN
from deepms.registry.options import BATCH_OPTIONS, Option, with_default
from deepms.registry.predictor import (
    BatchPredictor,
    ModelLoadError,
    json_safe,
    modification_entries,
)
from deepms.tasks.deeprt.calibration import METHODS, RTCalibration

log = logging.getLogger(__name__)
OUTPUT_COLUMNS = ("peptide", "predicted_rt", "rt_unit")
CAM_NAME = "Carbamidomethyl"
CAM = f"{CAM_NAME}@C"
CALIBRATED_UNIT = "calibrated"  # the reference file's unit, whatever it was
CALIBRATION = "Calibration to your LC system"


class RTPredictor(BatchPredictor):
    """A loaded :class:`RTModel` (or :class:`RTEnsembleModel`) behind the Predictor interface."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {"peptide": ("string", True)}
    params: ClassVar[dict[str, Any]] = {}
    model_class: ClassVar[str] = "deepms.tasks.deeprt.model.RTModel"
    options: ClassVar[tuple[Option, ...]] = (
        with_default(BATCH_OPTIONS[0], 1024),
        *BATCH_OPTIONS[1:],
        Option("system", str, None, "head of a multi-system model (default: its first)"),
        Option(
            "average_with",
            str,
            None,
            "other models trained alike (paths, runs:/, models:/; comma-separated): the mean",
        ),
        Option(
            "calibrate",
            str,
            None,
            "reference CSV/TSV (peptide, rt in your unit): calibrate to your LC system first",
            group=CALIBRATION,
        ),
        Option(
            "calibration",
            str,
            "auto",
            "auto: ridge over heads, else piecewise",
            choices=("auto", *METHODS),
            group=CALIBRATION,
        ),
    )

    def __init__(self, model: Any, batch_size: int = 1024, precision: str = "32") -> None:
        self.model = model.eval()
        self.encoder = model.encoder
        self.rt_unit = str(model.hparams.rt_unit)
        self.batch_size, self.precision = batch_size, "32"
        self.calibration: RTCalibration | None = None
        self.members: list[RTPredictor] = []  # averaged with this one (--average-with)
        self.member_names: list[str] = []
        self.configure(precision=precision)

    def configure(
        self,
        batch_size: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
        system: str | None = None,
        average_with: str | None = None,
        calibrate: str | os.PathLike[str] | None = None,
        calibration: str = "auto",
    ) -> None:
        """Batch options; ``system``: the head to predict with; ``average_with``: models to
        average with; ``calibrate``: a reference file to calibrate to first (``calibration``:
        the method)."""
        super().configure(batch_size, precision, threads)
        for member in self.members:
            member.configure(batch_size, precision)
        if average_with:
            self.average_with([m.strip() for m in str(average_with).split(",") if m.strip()])
        if system is not None:
            self.select_system(system)
        if calibrate is not None:
            self.calibrate(calibrate, calibration)

    def average_with(self, references: list[str]) -> None:
        """Average every prediction with these models' (the same systems and units)."""
        from deepms.registry.resolve import load_predictor

        for reference in references:
            member = load_predictor(reference, batch_size=self.batch_size)
            if not isinstance(member, RTPredictor):
                raise ValueError(f"--average-with {reference}: not an RT model")
            if member.model.systems != self.model.systems:
                raise ValueError(
                    f"--average-with {reference}: its systems or scaling differ from the model's"
                    f" ({member.model.system_names} vs {self.model.system_names})"
                )
            self.members.append(member)
            self.member_names.append(str(reference))

    def select_system(self, name: str) -> None:
        """Predict with the head of LC system ``name`` (a multi-system model's)."""
        names = self.model.system_names
        if name not in names:
            raise ValueError(f"system {name!r}: the model's systems are {names}")
        for predictor in (self, *self.members):
            predictor.model.head = names.index(name)
        self.rt_unit = str(self.model.systems[self.model.head]["rt_unit"])

    def head_outputs(self, peptides: list[Any]) -> np.ndarray:
        """[n, n_heads] standardised outputs of every head, in the peptides' order (averaged
        over the ensemble's members)."""
        return self._members_mean(peptides, "head_outputs")

    def _members_mean(self, peptides: list[Any], output: str) -> np.ndarray:
        """The mean of ``model.<output>(batch)`` over this model and its members."""
        return np.mean(
            [p._over_peptides(peptides, getattr(p.model, output)) for p in (self, *self.members)],
            axis=0,
        )

    def _over_peptides(self, peptides: list[Any], output: Any) -> np.ndarray:
        """``output(batch)`` over length-sorted batches of ``peptides``, back in their order."""

        def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return rows, output(self._batch([peptides[r] for r in rows])).float().numpy()

        parts = self._batched([len(p.sequence) for p in peptides], run)
        return self._in_input_order(parts, len(peptides), np.float64)

    def calibrate(self, reference: str | os.PathLike[str], method: str = "auto") -> RTCalibration:
        """Fit :attr:`calibration` on a reference file's peptides and observed RT."""
        peptides, observed = read_reference(reference)
        heads = self.model.system_names
        if method == "auto":
            method = "ridge" if len(heads) > 1 else "piecewise"
        self.calibration = RTCalibration.fit(
            self.head_outputs([self._as_trained(p) for p in peptides]),
            observed,
            method,
            head=self.model.head,
            reference=str(reference),
            heads=heads,
            models=self.member_names,
        )
        return self.calibration

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
        """RT (in :attr:`rt_unit`) of parsed peptides, in their order (the members' mean)."""
        if self.calibration is not None:
            return self.calibration.apply(self.head_outputs(peptides))
        return self._members_mean(peptides, "predict_rt")

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``peptide, predicted_rt, rt_unit`` (+ ``NormalizedRetentionTime``), in input order."""
        if "peptide" not in frame.columns:
            raise ValueError(f"input lacks a 'peptide' column; has {list(frame.columns)}")
        texts = frame["peptide"].astype(str).tolist()
        peptides = [self._as_trained(parse_proforma(t)) for t in texts]
        rt = self.predict_peptides(peptides) if texts else np.zeros(0)
        unit = self.rt_unit if self.calibration is None else CALIBRATED_UNIT
        return pd.DataFrame({"peptide": texts, "predicted_rt": rt, "rt_unit": unit, RT_COLUMN: rt})

    def write_output(self, tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]):
        """CSV (or TSV by extension) of ``peptide,predicted_rt,rt_unit``, written atomically."""
        path = Path(path)
        if self.calibration is not None:  # provenance: the map, and what it was fitted on
            Path(f"{path}.calibration.json").write_text(
                json.dumps(self.calibration.to_dict(), indent=2) + "\n"
            )
        sep = "\t" if path.suffix == ".tsv" else ","
        count = 0
        with atomic_path(path) as partial, open(partial, "w", newline="") as handle:
            handle.write(sep.join(OUTPUT_COLUMNS) + "\n")
            for table in tables:
                table[list(OUTPUT_COLUMNS)].to_csv(handle, sep=sep, index=False, header=False)
                count += len(table)
        return {"peptides": count}


def read_reference(path: str | os.PathLike[str]) -> tuple[list[Any], np.ndarray]:
    """Reference peptides and their observed RT from a ``rt_proforma`` table (``peptide``,
    ``rt``; CSV, or TSV by extension).

    A row whose peptide does not parse or whose RT is not a number is skipped with a warning
    naming the file and line; the file is refused when fewer than 3 rows remain.
    """
    from deepms.io.rt_table import read_table

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration reference {path}: no such file")
    bad: list[str] = []
    try:
        rows = list(read_table(path, "rt_proforma", lambda row, err: bad.append(f"{row}: {err}")))
    except DataFormatError as err:  # with a sink, only a missing column raises
        raise ValueError(
            f"calibration reference {path}: needs columns peptide and rt ({err})"
        ) from err
    if bad:
        log.warning("%s: skipped %d reference rows; first: %s", path, len(bad), bad[0])
    if len(rows) < 3:
        raise ValueError(f"calibration reference {path}: {len(rows)} usable rows (need 3)")
    return [r.peptide for r in rows], np.array([r.rt for r in rows], dtype=np.float64)
