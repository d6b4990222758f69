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

from deepms.chem import H2O, PROTON, get_modification_table, parse_proforma
from deepms.io.library import RT_COLUMN, library_peptide, write_library
from deepms.io.precursors import DigestSettings, read_precursors
from deepms.registry.predictor import ModelLoadError, Predictor, load_checkpoint

ION_TYPES = ("b", "y")
PRECISIONS = ("32", "bf16")
NORMALISATION = {
    "intensity": "per spectrum, divided by the most intense possible b/y ion (targets and output)",
    "collision_energy": "NCE / 100, with a known/unknown flag",
    "charge": "one-hot, 1..MAX_CHARGE",
}


class PDeepPredictor(Predictor):
    """A loaded :class:`PDeepModel` behind the task-independent :class:`Predictor` interface."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "peptide": ("string", True),
        "charge": ("long", True),
        "collision_energy": ("double", False),
        "fragmentation": ("string", False),
        "analyzer": ("string", False),
    }
    params: ClassVar[dict[str, Any]] = {"min_intensity": 0.01}

    def __init__(
        self,
        model: Any,
        batch_size: int = 512,
        min_intensity: float = 0.01,
        precision: str = "32",
        threads: int | None = None,
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
        self.configure(precision=precision, threads=threads)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **options: Any) -> PDeepPredictor:
        from deepms.tasks.pdeep.model import PDeepModel

        return cls(load_checkpoint(PDeepModel, path), **options)

    def configure(
        self,
        batch_size: int | None = None,
        min_intensity: float | None = None,
        precision: str | None = None,
        threads: int | None = None,
    ) -> None:
        """``precision="bf16"`` runs the LSTM in bfloat16 (about 2x faster on CPUs with bf16)."""
        if precision is not None and str(precision) not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use one of {PRECISIONS}")
        self.batch_size = int(batch_size or self.batch_size)
        self.min_intensity = self.min_intensity if min_intensity is None else float(min_intensity)
        self.precision = str(precision or self.precision)
        if threads:
            import torch

            torch.set_num_threads(int(threads))

    # --- registration: what makes the model self-describing ------------------------------------

    def describe(self) -> dict[str, Any]:
        table = get_modification_table()
        modifications = {}
        for key in self.encoder.modifications:
            name, _, site = key.rpartition("@")
            terminus = site if site in ("N-term", "C-term") else None
            mod = table.get(name, residue=None if terminus else site, terminus=terminus)
            modifications[key] = {"accession": mod.accession, "mass": mod.monoisotopic_mass}
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "hyperparameters": _plain(dict(self.model.hparams)),
            "ion_types": list(ION_TYPES),
            "fragment_charges": list(self.fragment_charges),
            "modifications": modifications,
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

        lengths = np.array([len(peptides[r].sequence) for r in rows])
        longest = int(lengths.max())
        residues = np.zeros((len(rows), longest), dtype=np.int64)
        mods = np.zeros((len(rows), longest, self.encoder.n_mod_features), dtype=np.float32)
        for i, r in enumerate(rows):
            peptide = peptides[r]
            residues[i, : lengths[i]] = self.encoder.encode_residues(peptide)
            if peptide.mods.count(None) != len(peptide.mods):  # modified (fast check)
                mods[i, : lengths[i]] = self.encoder.encode_modifications(peptide)
        return (
            torch.from_numpy(residues),
            torch.from_numpy(mods),
            torch.from_numpy(meta[rows]),
            torch.from_numpy(lengths),
        )

    def _forward(self, tensors: tuple) -> np.ndarray:
        import torch

        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"),
        ):
            return self.model(*tensors).float().clamp(min=0).numpy()

    def predict(self, frame: pd.DataFrame, min_intensity: float | None = None) -> pd.DataFrame:
        """Library rows (:data:`deepms.io.library.LIBRARY_COLUMNS`), in input order."""
        threshold = self.min_intensity if min_intensity is None else float(min_intensity)
        n = len(frame)
        columns = _input_columns(frame)
        peptides = [parse_proforma(p) for p in columns["peptide"]]
        charges = columns["charge"]
        charge_of_channel = np.tile(np.asarray(self.fragment_charges), len(ION_TYPES))
        order = np.argsort([len(p.sequence) for p in peptides], kind="stable")
        meta = self._meta(columns) if n else np.zeros((0, 0), dtype=np.float32)
        parts: list[tuple[np.ndarray, ...]] = []
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            tensors = self._encode(peptides, meta, rows)
            pred = self._forward(tensors)  # [B, bonds, channels]
            bonds = tensors[3].numpy() - 1
            possible = charge_of_channel[None, None, :] <= charges[rows][:, None, None]
            possible = possible & (np.arange(pred.shape[1])[None, :, None] < bonds[:, None, None])
            pred = np.where(possible, pred, 0.0)
            top = pred.reshape(len(rows), -1).max(axis=1)
            relative = pred / np.where(top > 0, top, 1.0)[:, None, None]
            keep = possible & (relative >= threshold) & (relative > 0)
            b, k, c = np.nonzero(keep)
            mz = fragment_mz_batch([peptides[r] for r in rows], self.fragment_charges)
            ion = c // len(self.fragment_charges)
            number = np.where(ion == 0, k + 1, bonds[b] - k)
            parts.append(
                (rows[b], mz[b, k, c], relative[b, k, c], ion, number, charge_of_channel[c])
            )
        return self._table(parts, peptides, columns)

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
        if RT_COLUMN in columns:
            table[RT_COLUMN] = columns[RT_COLUMN][row]
        return pd.DataFrame(table)

    # --- files: FASTA/CSV in, spectral library out ----------------------------------------------

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """CSV/TSV/parquet precursor lists, or a FASTA digested per ``options`` (DigestSettings)."""
        energy = options.pop("collision_energy", None)
        digest = DigestSettings(**options) if options else None
        return read_precursors(Path(path), chunk_size, digest, collision_energy=energy)

    def write_output(self, tables: Any, path: str | os.PathLike[str]) -> dict[str, int]:
        return write_library(tables, path)


def fragment_mz_batch(peptides: list[Any], charges: tuple[int, ...]) -> np.ndarray:
    """:func:`deepms.chem.fragment_mz` for a batch at once: ``[B, bonds, b z.., y z..]``.

    The same formula (cumulative residue masses; y = total - prefix + H2O), vectorised over the
    batch because a per-peptide call costs more than the model on a small network.
    """
    longest = max(len(p.sequence) for p in peptides)
    masses = np.zeros((len(peptides), longest))
    for i, peptide in enumerate(peptides):
        masses[i, : len(peptide.sequence)] = peptide.residue_masses()
    prefix = np.cumsum(masses, axis=1)[:, :-1, None]
    y = masses.sum(axis=1)[:, None, None] - prefix + H2O
    z = np.asarray(charges, dtype=np.float64)
    return np.concatenate([(prefix + z * PROTON) / z, (y + z * PROTON) / z], axis=-1)


def _input_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Column arrays with optional inputs filled in (unknown NCE/fragmentation stay unknown)."""
    missing = {"peptide", "charge"} - set(frame.columns)
    if missing:
        raise ValueError(f"input lacks column(s) {sorted(missing)}; has {list(frame.columns)}")
    n = len(frame)

    def optional(name: str, fill: Any, dtype: Any) -> np.ndarray:
        if name not in frame.columns:
            return np.full(n, fill, dtype=dtype)
        values = frame[name].to_numpy(dtype=dtype, na_value=fill)
        return values

    columns = {
        "peptide": frame["peptide"].astype(str).to_numpy(),
        "charge": frame["charge"].to_numpy(dtype=np.int64),
        "collision_energy": optional("collision_energy", np.nan, np.float64),
        "frag": optional("fragmentation", None, object),
        "analyzer": optional("analyzer", None, object),
    }
    if RT_COLUMN in frame.columns:
        columns[RT_COLUMN] = frame[RT_COLUMN].to_numpy(dtype=np.float64)
    return columns


def _plain(value: Any) -> Any:
    """JSON-safe copy of hyperparameters (tuples to lists, numpy scalars to Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
