"""Labelled synthetic spectra for de novo pretraining: digested proteomes, pdeep intensities, noise.

Real labelled spectra are scarce, so deepnovo can pretrain on spectra predicted for peptides of
whole proteomes. Peptides come from the catalogued proteomes (tryptic digest with deepms's own
rules, fixed carbamidomethyl C, oxidised M at a configured rate), are sampled with a seed, get a
charge and an NCE, and a pdeep model (taken by reference: a checkpoint or model URI, loaded
through the registry, never imported) predicts their library rows (b/y m/z and intensities).
Peaks sit at the exact fragment m/z (charges 1..min(2, z-1)); noise as configured: true peaks
dropped, multiplicative log-normal intensity jitter, random low noise peaks, a ppm error on the
precursor m/z.

The output MGF (Casanovo layout, ``SEQ=`` ProForma labels) is cached under a name that carries a
hash of the settings, the pdeep checkpoint's sha256 and the proteomes' sha256s, so the same inputs
reuse the file and anything else writes a new one. CLI::

    python -m deepms.tasks.deepnovo.synthetic --pdeep CKPT_OR_URI \
        --proteomes proteome_yeast_swissprot proteome_ecoli --n-spectra 20000 --seed 42 --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.chem import PROTON, parse_proforma
from deepms.io.atomic import atomic_path
from deepms.io.library import library_peptide
from deepms.io.precursors import DigestSettings, digest_fasta
from deepms.io.spectrum import Spectrum

log = logging.getLogger(__name__)
#: Bump when the generated spectra change for the same settings (invalidates cached files).
GENERATOR_VERSION = 1
_CHUNK = 2048
#: the predictor that serves a pdeep checkpoint (a class path: deepnovo does not import pdeep)
PDEEP_PREDICTOR = "deepms.tasks.pdeep.predict.PDeepPredictor"


@dataclass(frozen=True)
class NoiseSettings:
    """How far a synthetic spectrum is from the model's clean prediction."""

    p_missing: float = 0.2  # each true peak is dropped with this probability
    intensity_sigma: float = 0.3  # sd of log(intensity factor); the factor's median is 1
    noise_peaks_mean: float = 20.0  # Poisson mean number of noise peaks per spectrum
    noise_intensity_max: float = 0.05  # noise intensities ~ U(0, this) x the spectrum's maximum
    mz_range: tuple[float, float] = (50.0, 2000.0)  # noise m/z range (capped at the [M+H]+)
    precursor_ppm: float = 10.0  # precursor m/z error ~ U(-ppm, +ppm)


@dataclass(frozen=True)
class SyntheticSettings:
    """What to digest and sample; everything that changes the output file is in here."""

    n_spectra: int = 20000
    seed: int = 42
    enzyme: str = "trypsin"
    missed_cleavages: int = 1
    min_length: int = 7
    max_length: int = 25
    oxidation_rate: float = 0.1  # each M is oxidised with this probability
    charges: tuple[int, ...] = (2, 3)
    charge_weights: tuple[float, ...] = (0.7, 0.3)
    nce_range: tuple[float, float] = (25.0, 35.0)  # NCE ~ U(low, high)
    min_intensity: float = 0.01  # predicted ions below this share of the maximum are no peaks
    noise: NoiseSettings = field(default_factory=NoiseSettings)

    def __post_init__(self) -> None:
        if len(self.charges) != len(self.charge_weights) or min(self.charge_weights) < 0:
            raise ValueError("charge_weights: one non-negative weight per charge")
        if not 0.0 <= self.noise.p_missing <= 1.0 or not 0.0 <= self.oxidation_rate <= 1.0:
            raise ValueError("p_missing and oxidation_rate are probabilities (0..1)")

    def key(self) -> dict[str, Any]:
        return {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(self)}


def digest_proteomes(paths: Sequence[Path], settings: SyntheticSettings) -> list[str]:
    """Unique peptides (ProForma, fixed CAM on C) of all proteomes, in first-seen order."""
    digest = DigestSettings(
        enzyme=settings.enzyme,
        missed_cleavages=settings.missed_cleavages,
        min_length=settings.min_length,
        max_length=settings.max_length,
        charges=(settings.charges[0],),
    )
    seen: dict[str, None] = {}
    for path in paths:
        for chunk in digest_fasta(path, digest, chunk_size=1 << 20):
            seen.update(dict.fromkeys(chunk["peptide"]))
    return list(seen)


def oxidise(peptide: str, rng: np.random.Generator, rate: float) -> str:
    """``peptide`` with each M oxidised with probability ``rate`` (M only appears as a residue)."""
    if rate <= 0 or "M" not in peptide:
        return peptide
    parts = peptide.split("M")
    hits = rng.random(len(parts) - 1) < rate
    out = [parts[0]]
    for hit, rest in zip(hits, parts[1:], strict=True):
        out.append(("M[Oxidation]" if hit else "M") + rest)
    return "".join(out)


def sample_precursors(peptides: Sequence[str], settings: SyntheticSettings) -> pd.DataFrame:
    """``n_spectra`` distinct peptides, each with a charge and an NCE, reproducibly."""
    rng = np.random.default_rng([settings.seed, 0])
    n = min(settings.n_spectra, len(peptides))
    chosen = rng.choice(len(peptides), size=n, replace=False)
    weights = np.asarray(settings.charge_weights, dtype=np.float64)
    charges = rng.choice(np.asarray(settings.charges), size=n, p=weights / weights.sum())
    low, high = settings.nce_range
    return pd.DataFrame(
        {
            "peptide": [oxidise(peptides[i], rng, settings.oxidation_rate) for i in chosen],
            "charge": charges.astype(np.int64),
            "collision_energy": np.round(rng.uniform(low, high, size=n), 2),
        }
    )


def add_noise(
    mz: np.ndarray,
    intensity: np.ndarray,
    precursor_mz: float,
    charge: int,
    noise: NoiseSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Drop, jitter and add peaks; return (m/z, intensity, precursor m/z with its ppm error)."""
    keep = rng.random(mz.size) >= noise.p_missing
    mz, intensity = mz[keep], intensity[keep]
    if noise.intensity_sigma > 0:
        intensity = intensity * np.exp(rng.normal(0.0, noise.intensity_sigma, intensity.size))
    n_noise = int(rng.poisson(noise.noise_peaks_mean)) if noise.noise_peaks_mean > 0 else 0
    if n_noise:
        top = float(intensity.max()) if intensity.size else 1.0
        high = min(noise.mz_range[1], (precursor_mz - PROTON) * charge + PROTON)
        low = min(noise.mz_range[0], high)
        mz = np.concatenate([mz, rng.uniform(low, high, n_noise)])
        noise_intensity = rng.uniform(0.0, noise.noise_intensity_max, n_noise) * top
        intensity = np.concatenate([intensity, noise_intensity])
    error = rng.uniform(-noise.precursor_ppm, noise.precursor_ppm) * 1e-6
    return mz, intensity, precursor_mz * (1.0 + error)


def synthetic_spectra(
    precursors: pd.DataFrame, predictor: Any, settings: SyntheticSettings, progress: bool = False
) -> Iterator[Spectrum]:
    """One noisy spectrum per precursor, peaks at pdeep's b/y ions (charge 1..min(2, z-1))."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng([settings.seed, 1])
    precursors = precursors[["peptide", "charge", "collision_energy"]]
    with tqdm(total=len(precursors), desc="synthetic spectra", disable=not progress) as bar:
        for start in range(0, len(precursors), _CHUNK):
            chunk = precursors.iloc[start : start + _CHUNK]
            unique = chunk.drop_duplicates(["peptide", "charge"])  # a repeat reuses its first NCE
            table = predictor.predict(unique, min_intensity=settings.min_intensity)
            groups = table.groupby(["ModifiedPeptide", "PrecursorCharge"], sort=False).indices
            mz_all = table["FragmentMz"].to_numpy()
            rel_all = table["RelativeIntensity"].to_numpy(dtype=np.float64)
            z_all = table["FragmentCharge"].to_numpy()
            for offset, (text, charge, nce) in enumerate(chunk.itertuples(index=False)):
                peptide = parse_proforma(text)
                rows = groups.get((library_peptide(peptide), int(charge)), np.zeros(0, int))
                rows = rows[z_all[rows] <= max(1, min(2, int(charge) - 1))]
                mz, intensity, precursor_mz = add_noise(
                    mz_all[rows],
                    rel_all[rows],
                    peptide.precursor_mz(int(charge)),
                    int(charge),
                    settings.noise,
                    rng,
                )
                bar.update(1)
                if mz.size == 0:
                    continue  # nothing predicted and no noise: no spectrum to learn from
                yield Spectrum(
                    identifier=f"synthetic:{start + offset}",
                    mz=mz,
                    intensity=intensity / intensity.max(),
                    precursor_mz=precursor_mz,
                    precursor_charge=int(charge),
                    peptide=peptide,
                    collision_energy=float(nce),
                )


def _sha256(path: Path) -> str:
    from deepms.datasets.registry import sha256_file

    return sha256_file(Path(path))


def load_pdeep(
    source: str, tracking_uri: str | None = None, predictor: str = PDEEP_PREDICTOR
) -> tuple[Any, str]:
    """(pdeep predictor, checkpoint sha256) for a checkpoint path, ``runs:/`` or ``models:/``.

    The model is taken by reference and served by the predictor class named ``predictor``
    (through :func:`deepms.registry.load_predictor`): deepnovo imports no other task's code,
    it only reads the library rows of ``predictor.predict(frame)``.
    """
    from deepms.registry import load_predictor
    from deepms.registry.reference import resolve_checkpoint

    path = resolve_checkpoint(str(source), tracking_uri)
    loaded = load_predictor(
        str(path), tracking_uri=tracking_uri, predictor=predictor, batch_size=256
    )
    return loaded, _sha256(path)


def resolve_proteomes(names: Sequence[str]) -> list[tuple[str, Path, str]]:
    """(name, local FASTA, sha256) per catalogued proteome, checksum-verified by the catalogue."""
    from deepms.datasets import registry

    out = []
    for name in names:
        for datafile in registry.get_dataset(name).files:
            out.append((name, registry.resolve_file(datafile), datafile.sha256))
    return out


def output_path(out_dir: Path, settings: SyntheticSettings, pdeep_sha: str, proteome_shas) -> Path:
    """``synthetic_<n>_<hash>.mgf``: the hash covers settings, checkpoint and proteome bytes."""
    key = {"settings": settings.key(), "pdeep": pdeep_sha, "proteomes": list(proteome_shas)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(out_dir) / f"synthetic_{settings.n_spectra}_{digest}.mgf"


def generate(
    pdeep: str | Any,
    proteomes: Sequence[str],
    settings: SyntheticSettings,
    out_dir: str | os.PathLike[str],
    progress: bool = True,
    pdeep_sha256: str | None = None,
    pdeep_predictor: str = PDEEP_PREDICTOR,
) -> Path:
    """Write (or reuse) the synthetic MGF and its ``.json`` provenance; return the MGF path.

    ``pdeep`` is a checkpoint path or URI (served by the class ``pdeep_predictor``), or a loaded
    predictor together with ``pdeep_sha256``.
    """
    from deepms.io.mgf import write_mgf

    if isinstance(pdeep, str | os.PathLike):
        predictor, pdeep_sha256 = load_pdeep(str(pdeep), predictor=pdeep_predictor)
    else:
        predictor = pdeep
        if not pdeep_sha256:
            raise ValueError("a loaded predictor needs pdeep_sha256 (it names the cache entry)")
    files = resolve_proteomes(proteomes)
    path = output_path(Path(out_dir), settings, pdeep_sha256, [sha for *_, sha in files])
    if path.is_file():
        log.info("reusing %s", path)
        return path
    peptides = digest_proteomes([p for _, p, _ in files], settings)
    precursors = sample_precursors(peptides, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, per_process=True) as partial:
        count = write_mgf(synthetic_spectra(precursors, predictor, settings, progress), partial)
        meta = {
            "settings": settings.key(),
            "pdeep": str(pdeep) if isinstance(pdeep, str | os.PathLike) else None,
            "pdeep_sha256": pdeep_sha256,
            "proteomes": [{"name": n, "sha256": s} for n, _, s in files],
            "n_peptides_digested": len(peptides),
            "n_spectra": count,
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("wrote %d spectra to %s", count, path)
    return path


def default_out_dir() -> Path:
    from deepms.datasets.registry import default_cache_dir

    return default_cache_dir() / "deepnovo_synthetic"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdeep", required=True, help="checkpoint path, runs:/ or models:/ URI")
    parser.add_argument(
        "--proteomes", nargs="+", default=["proteome_yeast_swissprot", "proteome_ecoli"]
    )
    parser.add_argument("--n-spectra", type=int, default=SyntheticSettings.n_spectra)
    parser.add_argument("--seed", type=int, default=SyntheticSettings.seed)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: cache)")
    parser.add_argument("--settings", type=Path, help="YAML/JSON with SyntheticSettings fields")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    fields = {}
    if args.settings:
        import yaml

        fields = yaml.safe_load(args.settings.read_text()) or {}
    settings = settings_from_dict({**fields, "n_spectra": args.n_spectra, "seed": args.seed})
    path = generate(args.pdeep, args.proteomes, settings, args.out or default_out_dir())
    print(path)
    return 0


def settings_from_dict(values: dict[str, Any]) -> SyntheticSettings:
    """SyntheticSettings from plain config values (lists become tuples, ``noise`` a sub-dict)."""

    def tuples(d: dict[str, Any]) -> dict[str, Any]:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

    values = dict(values)
    noise = NoiseSettings(**tuples(dict(values.pop("noise", None) or {})))
    return SyntheticSettings(**tuples(values), noise=noise)


if __name__ == "__main__":
    sys.exit(main())
