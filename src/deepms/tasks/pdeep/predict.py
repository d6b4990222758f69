"""pDeep as a predictor: precursors (ProForma peptide, charge, NCE) to spectral-library rows.

The model predicts per-bond b/y intensities; a library row is one fragment: its m/z (the formula
of :func:`deepms.chem.fragment_mz`, batched), its intensity relative to the spectrum's most
intense ion, and its annotation. Ions that cannot exist (fragment charge above the precursor
charge) and ions below ``min_intensity`` of the maximum are dropped. Precursors are sorted by
length and predicted in large batches (little padding), under ``torch.inference_mode``; rows
come back in input order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepms.chem import fragment_mz_batch, parse_proforma
from deepms.io.library import RT_COLUMN, library_peptide, write_library
from deepms.io.precursors import DigestSettings, read_precursors
from deepms.registry.options import BATCH_OPTIONS, DIGEST_OPTIONS, WORKERS, Option, with_default
from deepms.registry.predictor import (
    BatchPredictor,
    ModelLoadError,
    json_safe,
    modification_entries,
)

ION_TYPES = ("b", "y")
#: DIA library layouts of ``--library-format`` (:mod:`deepms.io.dia_library`), decoy methods
LIBRARY_FORMATS = ("openswath", "diann")
DECOYS = ("none", "pseudo_reverse")
NORMALISATION = {
    "intensity": "per spectrum, divided by the most intense possible b/y ion (targets and output)",
    "collision_energy": "NCE / 100, with a known/unknown flag",
    "charge": "one-hot, 1..MAX_CHARGE",
}


class PDeepPredictor(BatchPredictor):
    """A loaded :class:`PDeepModel` behind the task-independent :class:`Predictor` interface."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "peptide": ("string", True),
        "charge": ("long", True),
        "collision_energy": ("double", False),
        "fragmentation": ("string", False),
        "analyzer": ("string", False),
    }
    params: ClassVar[dict[str, Any]] = {"min_intensity": 0.01}
    model_class: ClassVar[str] = "deepms.tasks.pdeep.model.PDeepModel"
    options: ClassVar[tuple[Option, ...]] = (
        with_default(BATCH_OPTIONS[0], 256),
        *BATCH_OPTIONS[1:],
        WORKERS,
        Option("min_intensity", float, 0.01, "drop ions below this x max"),
        Option("collision_energy", float, None, "NCE for rows without one", "input"),
        Option(
            "calibrate_ce",
            str,
            None,
            "identified spectra of your run (MGF with SEQ= and CHARGE=): every row is predicted "
            "at the NCE that best explains them (the curve goes to OUTPUT.calibration.json)",
        ),
        Option("rt_model", str, None, "a model predicting NormalizedRetentionTime", "model"),
        Option(
            "library_format",
            str,
            None,
            "DIA library layout of a .tsv: openswath or diann (a .pqp is always OpenSWATH's "
            "PQP); unset: deepms columns",
            choices=LIBRARY_FORMATS,
        ),
        Option("decoys", str, "none", "decoys of an OpenSWATH/DIA-NN library", choices=DECOYS),
        *DIGEST_OPTIONS,
    )

    def __init__(
        self,
        model: Any,
        batch_size: int = 256,
        min_intensity: float = 0.01,
        precision: str = "32",
        threads: int | None = None,
        workers: int = 1,
        library_format: str | None = None,
        decoys: str = "none",
    ) -> None:
        from deepms.tasks.pdeep.data import N_META

        if int(model.hparams.n_meta) != N_META:
            raise ModelLoadError(
                f"model expects {model.hparams.n_meta} acquisition features, this code builds "
                f"{N_META}: it was trained with an incompatible deepms version"
            )
        self.model = model.eval()
        self.encoder = model.encoder
        self.fragment_charges = tuple(int(z) for z in model.hparams.fragment_charges)
        self.batch_size, self.min_intensity, self.precision = batch_size, min_intensity, "32"
        self.workers = 1
        self.library_format: str | None = None
        self.decoys = "none"
        self._dia_output = False  # while writing a DIA library: carry the input's proteins
        self.calibration: Any = None  # deepms.tasks.pdeep.calibrate.Calibration, once calibrated
        self.configure(precision=precision, threads=threads, workers=workers)
        self.configure(library_format=library_format, decoys=decoys)

    def configure(
        self,
        batch_size: int | None = None,
        min_intensity: float | None = None,
        precision: str | None = None,
        threads: int | None = None,
        workers: int | None = None,
        library_format: str | None = None,
        decoys: str | None = None,
        calibrate_ce: str | None = None,
    ) -> None:
        """``precision="bf16"`` runs the LSTM in bfloat16 (about 2x faster on CPUs with bf16);
        ``workers`` > 1 predicts that many batches at once in threads (torch releases the GIL),
        which uses several cores better than torch's own threads on this small LSTM.
        ``library_format`` / ``decoys`` choose the DIA library a ``.tsv`` output becomes."""
        super().configure(batch_size, precision, threads)
        self.min_intensity = self.min_intensity if min_intensity is None else float(min_intensity)
        self.workers = max(1, int(workers or self.workers))
        if library_format is not None and library_format not in LIBRARY_FORMATS:
            raise ValueError(f"library_format {library_format!r}: use one of {LIBRARY_FORMATS}")
        if decoys is not None and decoys not in DECOYS:
            raise ValueError(f"decoys {decoys!r}: use one of {DECOYS}")
        self.library_format = library_format or self.library_format
        self.decoys = decoys or self.decoys
        if calibrate_ce is not None:
            self.calibrate_collision_energy(calibrate_ce)

    def calibrate_collision_energy(
        self, identified: str | os.PathLike[str], limit: int | None = None, **kwargs: Any
    ) -> Any:
        """Choose the NCE that best explains ``identified`` spectra (:mod:`.calibrate`); every
        later prediction uses it, whatever NCE the rows give."""
        import sys

        from deepms.tasks.pdeep.calibrate import calibrate, load_identified

        samples, unusable = load_identified(
            identified, self.fragment_charges, limit=limit, encoder=self.encoder
        )
        self.calibration = calibrate(self, samples, str(identified), n_unusable=unusable, **kwargs)
        c = self.calibration
        print(
            f"{identified}: calibrated NCE {c.nce:g} from {c.n_spectra} spectra (median PCC "
            f"{c.median_pcc:.3f}; {c.median_pcc_unknown_nce:.3f} with the NCE unknown)",
            file=sys.stderr,
        )
        return self.calibration

    # --- registration: what makes the model self-describing ------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "hyperparameters": json_safe(dict(self.model.hparams)),
            "ion_types": list(ION_TYPES),
            "fragment_charges": list(self.fragment_charges),
            "modifications": modification_entries(self.encoder.modifications),
            "normalisation": NORMALISATION,
        }

    def check_description(self, description: dict[str, Any]) -> None:
        current = self.describe()["modifications"]
        for key, entry in (description.get("modifications") or {}).items():
            now = current.get(key)
            if now is None or now["accession"] != entry["accession"]:
                raise ModelLoadError(f"modification {key}: the model's vocabulary differs")
            if not math.isclose(now["mass"], entry["mass"], abs_tol=1e-6):
                raise ModelLoadError(
                    f"modification {key} ({entry['accession']}): trained with mass "
                    f"{entry['mass']}, this Unimod table says {now['mass']}"
                )

    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"peptide": ["PEPTIDEK", "LGEYGFQNALIVR"], "charge": [2, 3], "collision_energy": 30.0}
        )

    # --- prediction ----------------------------------------------------------------------------

    def _meta(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Acquisition features per row, computed once per distinct (charge, NCE, ...)."""
        from deepms.tasks.pdeep.data import meta_features

        energies = [None if not np.isfinite(e) else float(e) for e in columns["collision_energy"]]
        charges = columns["charge"].tolist()
        keys = list(zip(charges, energies, columns["frag"], columns["analyzer"], strict=True))
        distinct = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        table = np.stack([meta_features(*key) for key in distinct])
        return table[[distinct[key] for key in keys]]

    def _encode(self, peptides: list[Any], meta: np.ndarray, rows: np.ndarray) -> tuple:
        import torch

        encoded = self.encoder.encode_batch([peptides[r] for r in rows])  # as the training collate
        return (
            torch.from_numpy(encoded.residues),
            torch.from_numpy(encoded.mods),
            torch.from_numpy(meta[rows]),
            torch.from_numpy(encoded.lengths),
        )

    def _forward(self, tensors: tuple) -> np.ndarray:
        """Non-negative intensities of one encoded batch (called under :meth:`_inference`)."""
        return self.model(*tensors).float().clamp(min=0).numpy()

    def predict(self, frame: pd.DataFrame, min_intensity: float | None = None) -> pd.DataFrame:
        """Library rows (:data:`deepms.io.library.LIBRARY_COLUMNS`), in input order."""
        threshold = self.min_intensity if min_intensity is None else float(min_intensity)
        n = len(frame)
        columns = _input_columns(frame)
        if self.calibration is not None:  # the run's calibrated NCE replaces the rows' own
            columns["collision_energy"] = np.full(n, self.calibration.nce)
        peptides = [parse_proforma(p) for p in columns["peptide"]]
        charges = columns["charge"]
        meta = self._meta(columns) if n else np.zeros((0, 0), dtype=np.float32)

        def run(rows: np.ndarray) -> tuple[np.ndarray, ...]:
            return self._predict_batch(peptides, meta, charges[rows], rows, threshold)

        parts = self._batched([len(p.sequence) for p in peptides], run, self.workers)
        if self._dia_output and "protein" in frame.columns:
            columns["ProteinId"] = frame["protein"].fillna("").astype(str).to_numpy()
        return self._table(parts, peptides, columns)

    def _predict_batch(
        self,
        peptides: list[Any],
        meta: np.ndarray,
        charges: np.ndarray,
        rows: np.ndarray,
        threshold: float,
    ) -> tuple[np.ndarray, ...]:
        """One batch (run under :meth:`_inference`): (input row, m/z, relative intensity, ion,
        number, charge) per kept ion."""
        charge_of_channel = np.tile(np.asarray(self.fragment_charges), len(ION_TYPES))
        tensors = self._encode(peptides, meta, rows)
        pred = self._forward(tensors)  # [B, bonds, channels]
        bonds = tensors[3].numpy() - 1
        possible = charge_of_channel[None, None, :] <= charges[:, None, None]
        possible = possible & (np.arange(pred.shape[1])[None, :, None] < bonds[:, None, None])
        pred = np.where(possible, pred, 0.0)
        top = pred.reshape(len(rows), -1).max(axis=1)
        relative = pred / np.where(top > 0, top, 1.0)[:, None, None]
        b, k, c = np.nonzero(possible & (relative >= threshold) & (relative > 0))
        mz = fragment_mz_batch([peptides[r] for r in rows], self.fragment_charges)
        ion = c // len(self.fragment_charges)
        number = np.where(ion == 0, k + 1, bonds[b] - k)
        return rows[b], mz[b, k, c], relative[b, k, c], ion, number, charge_of_channel[c]

    def _table(self, parts: list, peptides: list[Any], columns: dict[str, Any]) -> pd.DataFrame:
        if parts:
            row, mz, rel, ion, number, z = (np.concatenate(p) for p in zip(*parts, strict=True))
        else:
            row = ion = number = z = np.zeros(0, dtype=np.int64)
            mz, rel = np.zeros(0), np.zeros(0, dtype=np.float32)
        order = np.argsort(row, kind="stable")
        row = row[order]
        charges = columns["charge"]
        modified = np.array([library_peptide(p) for p in peptides], dtype=object)
        stripped = np.array([p.sequence for p in peptides], dtype=object)
        precursor_mz = np.array(
            [p.precursor_mz(int(z)) for p, z in zip(peptides, charges, strict=True)]
        )
        table = {
            "ModifiedPeptide": modified[row],
            "StrippedPeptide": stripped[row],
            "PrecursorCharge": charges[row],
            "PrecursorMz": precursor_mz[row],
            "FragmentMz": mz[order].astype(np.float64),
            "RelativeIntensity": rel[order].astype(np.float32),
            "FragmentType": np.asarray(ION_TYPES, dtype=object)[ion[order]],
            "FragmentNumber": number[order].astype(np.int64),
            "FragmentCharge": z[order].astype(np.int64),
            "FragmentLossType": np.full(len(row), "noloss", dtype=object),
        }
        for extra in (RT_COLUMN, "ProteinId"):
            if extra in columns:
                table[extra] = columns[extra][row]
        return pd.DataFrame(table)

    # --- files: FASTA/CSV in, spectral library out ----------------------------------------------

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """CSV/TSV/parquet precursor lists, or a FASTA digested per ``options`` (DigestSettings)."""
        energy = options.pop("collision_energy", None)
        digest = DigestSettings(**options) if options else None
        return read_precursors(
            Path(path), chunk_size, digest, collision_energy=energy, reject=self.reject_record
        )

    def write_output(self, tables: Any, path: str | os.PathLike[str]) -> dict[str, int]:
        """deepms columns (.tsv/.parquet/.msp), or with ``library_format`` or a ``.pqp`` path an
        OpenSWATH/DIA-NN library (:func:`deepms.io.dia_decoys.write_predicted_library`)."""
        if self.calibration is not None:  # provenance: which NCE, from what, and the curve
            import json

            Path(f"{path}.calibration.json").write_text(
                json.dumps(self.calibration.to_dict(), indent=2) + "\n"
            )
        if self.library_format is None and Path(path).suffix.lower() != ".pqp":
            if self.decoys != "none":
                raise ValueError("decoys need --library-format openswath|diann or a .pqp output")
            return write_library(tables, path)
        from deepms.io.dia_decoys import write_predicted_library

        self._dia_output = True  # ``tables`` is lazy: predict() runs while this writes
        try:
            return write_predicted_library(tables, path, self.library_format, self.decoys)
        finally:
            self._dia_output = False


def _checked_numbers(
    values: pd.Series, name: str, whole: bool = False, minimum: float | None = None
) -> np.ndarray:
    """``values`` as numbers (int64 when ``whole``; empty cells NaN otherwise), or a ValueError
    naming the first bad value: a row that cannot be predicted, never a silent cast."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    text = values.to_numpy(dtype=object)
    given = ~pd.isna(text)
    wrong = (given & np.isnan(numbers)) | (whole & ~given)
    if whole:
        wrong |= given & ~np.isnan(numbers) & (numbers != np.round(numbers))
    if minimum is not None:
        wrong |= numbers < minimum
    if wrong.any():
        value = text[np.flatnonzero(wrong)[0]]
        if pd.isna(value):
            raise ValueError(f"{name} is empty")
        need = "a whole number" if whole else "a number"
        floor = f" of at least {minimum:g}" if minimum is not None else ""
        try:
            shown = f"{float(value):g}"
        except ValueError:
            shown = repr(value)
        raise ValueError(f"{name} {shown}: must be {need}{floor}")
    return numbers.astype(np.int64) if whole else numbers


def _input_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Column arrays with optional inputs filled in (unknown NCE/fragmentation stay unknown)."""
    missing = {"peptide", "charge"} - set(frame.columns)
    if missing:
        raise ValueError(f"input lacks column(s) {sorted(missing)}; has {list(frame.columns)}")

    def optional(name: str, fill: Any, dtype: Any) -> np.ndarray:
        if name not in frame.columns:
            return np.full(len(frame), fill, dtype=dtype)
        return frame[name].to_numpy(dtype=dtype, na_value=fill)

    columns = {
        "peptide": frame["peptide"].astype(str).to_numpy(),
        "charge": _checked_numbers(frame["charge"], "charge", whole=True, minimum=1),
        "collision_energy": (
            _checked_numbers(frame["collision_energy"], "collision_energy", minimum=0)
            if "collision_energy" in frame.columns
            else np.full(len(frame), np.nan)
        ),
        "frag": optional("fragmentation", None, object),
        "analyzer": optional("analyzer", None, object),
    }
    if RT_COLUMN in frame.columns:
        columns[RT_COLUMN] = frame[RT_COLUMN].to_numpy(dtype=np.float64)
    return columns
