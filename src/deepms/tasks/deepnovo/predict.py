"""A trained de novo model as a predictor: MS2 spectra in, peptides out.

``deepms predict MODEL --input spectra.mgf --output out.mztab`` (or ``.csv``) streams the MGF in
chunks, preprocesses each spectrum with the settings the model was trained with (saved in its
hyperparameters), decodes it by beam search constrained by the precursor mass, and writes one PSM
per input spectrum, in input order: a spectrum whose decoded mass does not fit its precursor
within the tolerance, or that cannot be decoded at all (no charge, no peaks left), is written as
unsequenced (empty sequence, null score), never dropped. I and L are one residue: output says L.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepms.registry.options import BATCH_SIZE, THREADS, Option
from deepms.registry.predictor import ModelLoadError, Predictor
from deepms.tasks.deepnovo.data import collate
from deepms.tasks.deepnovo.preprocess import Preprocessor

UNITS = ("ppm", "Da")
OUTPUT_COLUMNS = (
    "spectrum_index",
    "title",
    "charge",
    "precursor_mz",
    "retention_time",
    "sequence",
    "score",
    "aa_scores",
    "calc_mz",
    "mass_error_ppm",
)


def _array(value: Any) -> np.ndarray:
    """Peaks as a numpy array; MLflow inputs carry them as space-separated text."""
    if isinstance(value, str):
        return np.array(value.split(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


class DeNovoPredictor(Predictor):
    """A loaded DeepNovo or Casanovo-style model behind the Predictor interface."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "precursor_mz": ("double", True),
        "charge": ("long", True),
        "mz": ("string", True),
        "intensity": ("string", True),
        "title": ("string", False),
        "retention_time": ("double", False),
    }
    #: checkpoints record DeepNovoModel or CasanovoModel (older ones: legacy_model_class)
    model_class: ClassVar[str] = "deepms.tasks.deepnovo.models.DeepNovoModel"
    options: ClassVar[tuple[Option, ...]] = (
        BATCH_SIZE,
        Option("precision", str, "32", "deepnovo predicts in float32 only", choices=("32",)),
        THREADS,
        Option("beam_size", int, None, "beams per spectrum (default: the model's)"),
        Option(
            "precursor_tolerance",
            float,
            None,
            "decoded mass vs precursor (default: the model's)",
        ),
        Option("tolerance_unit", str, None, "its unit (default: the model's)", choices=UNITS),
    )

    @classmethod
    def legacy_model_class(cls, checkpoint: dict[str, Any]) -> str:
        """Before checkpoints recorded their class, a Casanovo-style model was the one whose
        hyperparameters hold its transformer's ``encoder_layers``; any other is DeepNovo."""
        if "encoder_layers" in (checkpoint.get("hyper_parameters") or {}):
            return "deepms.tasks.deepnovo.models.CasanovoModel"
        return cls.model_class

    def __init__(self, model: Any, batch_size: int = 64) -> None:
        self.model = model.eval()
        self.vocab = model.vocab
        self.preprocessor = Preprocessor(**dict(model.hparams.get("preprocessing") or {}))
        self.batch_size = batch_size
        self.beam_size = int(model.hparams.beam_size)
        self.input_path: str | None = None

    def configure(
        self,
        batch_size: int | None = None,
        threads: int | None = None,
        beam_size: int | None = None,
        precursor_tolerance: float | None = None,
        tolerance_unit: str | None = None,
        precision: str | None = None,
    ) -> None:
        """Batch size, torch threads, beam size and precursor tolerance (float32 only)."""
        if precision not in (None, "32"):
            raise ValueError(f"precision {precision!r}: deepnovo predicts in float32 only")
        self.batch_size = int(batch_size or self.batch_size)
        self.beam_size = int(beam_size or self.beam_size)
        hp = self.model.hparams
        if precursor_tolerance is not None:
            hp.precursor_tolerance = float(precursor_tolerance)
        if tolerance_unit is not None:
            hp.tolerance_unit = str(tolerance_unit)
        if threads:
            import torch

            torch.set_num_threads(int(threads))

    def describe(self) -> dict[str, Any]:
        hp = {k: v for k, v in dict(self.model.hparams).items()}
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "vocabulary": [
                [t, m] for t, m in zip(self.vocab.tokens, self.vocab.masses, strict=True)
            ],
            "equate_il": self.vocab.equate_il,
            "beam_size": self.beam_size,
            "precursor_tolerance": [hp["precursor_tolerance"], hp["tolerance_unit"]],
            "preprocessing": dict(hp.get("preprocessing") or {}),
            "output_columns": list(OUTPUT_COLUMNS),
        }

    def check_description(self, description: dict[str, Any]) -> None:
        stored = description.get("vocabulary")
        if stored and [token for token, _ in stored] != self.vocab.tokens:
            raise ModelLoadError("the model's residue vocabulary differs from its metadata")

    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "precursor_mz": [451.25348, 500.2],
                "charge": [2, 2],
                "mz": ["175.119 209.103 322.186 417.255 580.319 717.377", "147.113 244.166"],
                "intensity": ["0.2 0.13 0.16 0.15 0.32 0.6", "1.0 0.5"],
            }
        )

    def predict(self, frame: pd.DataFrame, **params: Any) -> pd.DataFrame:
        """One row per input row, in order; unsequenced rows have an empty sequence."""
        if params:
            raise ValueError(f"unknown parameters {sorted(params)}")
        from deepms.chem import PROTON

        rows: list[dict[str, Any]] = []
        items: list[tuple[int, dict[str, Any]]] = []
        for i, rec in enumerate(frame.to_dict("records")):
            charge = rec.get("charge")
            charge = int(charge) if charge is not None and not pd.isna(charge) else 0
            precursor = float(rec["precursor_mz"])
            rows.append(
                {
                    "spectrum_index": int(rec.get("spectrum_index", i)),
                    "title": str(rec.get("title", "") or ""),
                    "charge": charge,
                    "precursor_mz": precursor,
                    "retention_time": rec.get("retention_time"),
                    "sequence": "",
                    "score": math.nan,
                    "aa_scores": [],
                    "calc_mz": math.nan,
                    "mass_error_ppm": math.nan,
                }
            )
            peaks = None
            if charge > 0 and math.isfinite(precursor):
                peaks = self.preprocessor(
                    _array(rec["mz"]), _array(rec["intensity"]), precursor, charge
                )
            if peaks is not None:
                item = {"mz": peaks[0], "intensity": peaks[1], "precursor_mz": precursor}
                items.append((i, {**item, "charge": charge, "tokens": None}))
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            batch = collate([item for _, item in chunk])
            batch = {
                k: v.to(self.model.device) if hasattr(v, "to") else v for k, v in batch.items()
            }
            for (i, _), result in zip(chunk, self.model.beam(batch, self.beam_size), strict=True):
                if result is None:
                    continue
                tokens = self.vocab.decode(result.tokens)
                peptide = self.vocab.to_peptide(tokens)
                rows[i].update(
                    sequence=peptide.to_proforma(),
                    score=float(result.score),
                    aa_scores=[round(float(s), 5) for s in result.residue_scores[: len(tokens)]],
                    calc_mz=(peptide.monoisotopic_mass + rows[i]["charge"] * PROTON)
                    / rows[i]["charge"],
                    mass_error_ppm=float(result.mass_error_ppm),
                )
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """MGF files are streamed (labels, if any, ignored); tables go the default way."""
        self.input_path = str(Path(path).resolve())
        if Path(path).suffix.lower() != ".mgf":
            return super().read_input(path, chunk_size, **options)
        if options:
            raise ValueError(f"{type(self).__name__}: input options {sorted(options)} unused")
        return _mgf_chunks(Path(path), chunk_size, self.reject_record)

    def write_output(
        self, tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]
    ) -> dict[str, int]:
        """``.mztab``: mzTab 1.0 PSM section as Casanovo writes it; ``.csv``: one row a PSM."""
        suffix = Path(path).suffix.lower()
        if suffix not in (".mztab", ".csv"):
            return super().write_output(tables, path)
        from deepms.io.mztab import write_denovo_csv, write_mztab

        counts = {"sequenced": 0, "unsequenced": 0}

        def psms() -> Iterator[dict[str, Any]]:
            for table in tables:
                for row in table.to_dict("records"):
                    counts["sequenced" if row["sequence"] else "unsequenced"] += 1
                    yield {k: None if _missing(v) else v for k, v in row.items()}

        if suffix == ".csv":
            rows = write_denovo_csv(path, psms())
        else:
            hp = self.model.hparams
            rows = write_mztab(
                path,
                psms(),
                ms_run_location=self.input_path or "unknown",
                software_name="deepms",
                software_version=_version(),
                parameters={
                    "model": type(self.model).__name__,
                    "beam_size": self.beam_size,
                    "precursor_tolerance": f"{hp.precursor_tolerance} {hp.tolerance_unit}",
                    "isotope_errors": list(hp.isotope_errors),
                    "equate_il": self.vocab.equate_il,
                    "residues": " ".join(self.vocab.tokens[2:]),
                },
                description="deepms de novo peptide sequencing (I and L written as L)",
                fixed_mods=[t for t in self.vocab.tokens if t == "C[UNIMOD:4]"],
                variable_mods=[t for t in self.vocab.tokens if "UNIMOD" in t and t[0] != "C"],
            )
        return {"rows": int(rows or 0), **counts}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepms")
    except PackageNotFoundError:
        return "unknown"


def _mgf_chunks(
    path: Path, chunk_size: int, reject: Callable[[str, str], None]
) -> Iterator[pd.DataFrame]:
    from deepms.io import read_mgf

    rows: list[dict[str, Any]] = []
    spectra = read_mgf(path, require_charge=False, on_error=reject, labels=False)
    for index, spectrum in enumerate(spectra):
        rows.append(
            {
                "spectrum_index": index,
                "title": spectrum.identifier,
                "precursor_mz": spectrum.precursor_mz if spectrum.precursor_mz else math.nan,
                "charge": spectrum.precursor_charge or 0,
                "retention_time": spectrum.retention_time,
                "mz": spectrum.mz,
                "intensity": spectrum.intensity,
            }
        )
        if len(rows) >= chunk_size:
            yield pd.DataFrame(rows)
            rows = []
    if rows:
        yield pd.DataFrame(rows)
