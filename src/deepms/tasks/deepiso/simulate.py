"""An LC-MS1 map simulator (centroided or profile) with exact feature labels, for deepiso.

Why simulate: no hand-curated peptide-feature truth exists for real maps (see the data SOURCE.md),
so a detector learns from, and is scored on, maps where every peak's origin is known.

Choices (each a knob in :class:`SimulationConfig`):

- peptides: tryptic digest of a proteome FASTA (length 7-30, standard residues) or a given list;
  cysteines carry carbamidomethyl (+C2H3NO) as in the usual sample preparation;
- retention time: a callable ``sequences -> values``; the default sums Guo et al.'s (pH 2)
  retention coefficients (pyteomics.achrom), a simple hydrophobicity model. Pass a trained deeprt
  predictor (e.g. ``lambda seqs: model.predict(seqs)``) to get realistic RT; with ``rescale_rt``
  its output (any unit, iRT included) is mapped linearly onto the gradient by its 1st-99th
  percentiles;
- isotope envelopes from the EXACT elemental composition (not averagine), aggregated by nominal
  mass shift: abundances are exact, each peak's mass is the abundance-weighted mean of its fine
  structure (what a centroider reports);
- elution: an exponentially modified Gaussian (EMG) per feature, sampled at each scan;
- intensity log-uniform over ``log10_intensity``; multiplicative log-normal scan noise;
- m/z error: Gaussian in ppm; peaks below ``detection_limit`` are missing; uniform noise peaks;
- co-elution and overlap happen naturally (no exclusion); in centroided output overlapping peaks
  stay separate centroids (no merging at finite resolution; a known simplification), while
  ``profile=True`` samples Gaussian peak shapes (FWHM = m/z / ``resolution``) summed on a shared
  grid, so overlaps merge as in real profile data.

Truth: one row per feature with at least ``min_scans`` scans holding its most abundant isotope;
``rt_start``/``rt_end`` are the first/last scan with any recorded peak of the feature,
``rt_apex`` the scan of its largest noise-free total, ``summed_intensity`` the sum of its
recorded peaks (what a perfect detector would integrate), ``n_isotopes`` the isotopes with at
least one recorded peak.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from pyteomics import mass

from deepms.io.atomic import atomic_path
from deepms.io.ms1map import Ms1Map, write_ms1_mzml

PROTON = 1.007276466812
TRUTH_COLUMNS = (
    "feature_id",
    "peptide",
    "charge",
    "mono_mz",
    "rt_start",
    "rt_apex",
    "rt_end",
    "summed_intensity",
    "n_isotopes",
)
RtModel = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of one simulated run (defaults: a small CPU-sized map, ~600 scans)."""

    fasta: str | None = None  # proteome to digest; None -> ``peptides`` must be given
    peptides: tuple[str, ...] = ()  # explicit peptides (used when no FASTA)
    n_features: int = 300
    min_length: int = 7
    max_length: int = 30
    missed_cleavages: int = 0
    carbamidomethyl: bool = True
    rt_range: tuple[float, float] = (0.0, 600.0)  # seconds
    scan_interval: float = 1.0  # seconds between MS1 scans
    mz_range: tuple[float, float] = (350.0, 1500.0)
    charges: tuple[int, ...] = (1, 2, 3, 4, 5)
    charge_weights: tuple[float, ...] = (0.1, 0.5, 0.3, 0.07, 0.03)
    log10_intensity: tuple[float, float] = (4.0, 8.0)  # feature total (area), log-uniform
    sigma_range: tuple[float, float] = (2.0, 6.0)  # EMG Gaussian width, seconds
    tau_range: tuple[float, float] = (0.5, 6.0)  # EMG exponential tail, seconds
    max_isotopes: int = 6
    min_isotope_abundance: float = 0.01  # relative to the most abundant isotope
    ppm_error: float = 3.0  # sd of the Gaussian m/z error
    intensity_noise: float = 0.15  # sd of the log-normal multiplicative scan noise
    detection_limit: float = 1e3  # peaks below are not recorded
    noise_peaks_per_scan: float = 50.0  # Poisson mean of uniform noise peaks
    noise_log10_range: tuple[float, float] = (3.0, 4.0)
    min_scans: int = 3
    rescale_rt: bool = True
    profile: bool = False  # sample Gaussian peak shapes instead of centroids
    resolution: float = 60000.0  # m/z / FWHM of the profile peaks (constant: ppm grid)
    points_per_fwhm: float = 4.0


def isotope_envelope(
    composition: dict[str, int], n_peaks: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Exact isotope envelope of an elemental composition, by nominal mass shift 0..n_peaks-1.

    Returns (neutral masses, abundances summing to the full distribution's share in these
    peaks). Each element's isotope pattern is raised to its count by repeated convolution
    (exact; truncating at ``n_peaks`` loses nothing below it), carrying abundance-weighted masses.
    """
    prob = np.zeros(n_peaks)
    prob[0] = 1.0
    pmass = np.zeros(n_peaks)
    for element, count in composition.items():
        if count < 0:
            raise ValueError(f"negative count of {element} in {composition}")
        if count == 0:
            continue
        isotopes = {k: v for k, v in mass.nist_mass[element].items() if k != 0 and v[1] > 0}
        base = min(isotopes)
        ep, em = np.zeros(n_peaks), np.zeros(n_peaks)
        for number, (isotope_mass, abundance) in isotopes.items():
            if number - base < n_peaks:
                ep[number - base] = abundance
                em[number - base] = abundance * isotope_mass
        while count:  # binary exponentiation: log2(count) convolutions, not count
            if count & 1:
                prob, pmass = _combine(prob, pmass, ep, em, n_peaks)
            count >>= 1
            if count:
                ep, em = _combine(ep, em, ep, em, n_peaks)
    with np.errstate(invalid="ignore", divide="ignore"):
        masses = np.where(prob > 0, pmass / prob, np.nan)
    return masses, prob


def _combine(
    p1: np.ndarray, m1: np.ndarray, p2: np.ndarray, m2: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Convolve two (abundance, abundance x mass) distributions over nominal shifts."""
    return np.convolve(p1, p2)[:n], (np.convolve(m1, p2) + np.convolve(p1, m2))[:n]


def peptide_composition(sequence: str, carbamidomethyl: bool = True) -> dict[str, int]:
    """Elemental composition of an unmodified peptide (+C2H3NO per Cys if carbamidomethylated)."""
    composition = dict(mass.Composition(sequence=sequence))
    if carbamidomethyl:
        n_cys = sequence.count("C")
        for element, add in (("C", 2), ("H", 3), ("N", 1), ("O", 1)):
            composition[element] = composition.get(element, 0) + add * n_cys
    return composition


def hydrophobicity_rt(sequences: Sequence[str]) -> np.ndarray:
    """Default RT model: summed Guo (pH 2.0) retention coefficients, in arbitrary units."""
    from pyteomics import achrom

    return np.array([achrom.calculate_RT(s, achrom.RCs_guo_ph2_0) for s in sequences], dtype=float)


def digest_peptides(config: SimulationConfig) -> list[str]:
    """Unique tryptic peptides of the config's FASTA (or its explicit peptide list)."""
    if config.fasta is None:
        if not config.peptides:
            raise ValueError("SimulationConfig needs a FASTA or a peptide list")
        return list(dict.fromkeys(config.peptides))
    from deepms.io.fasta import read_fasta
    from deepms.io.precursors import DigestSettings

    settings = DigestSettings(
        missed_cleavages=config.missed_cleavages,
        min_length=config.min_length,
        max_length=config.max_length,
        fixed_mods=(),
    )
    seen: dict[str, None] = {}
    for record in read_fasta(Path(config.fasta), on_error="skip"):
        for peptide in settings.digest(record.sequence.upper()):
            seen.setdefault(peptide, None)
    return list(seen)


def _emg(t: np.ndarray, mu: float, sigma: float, tau: float) -> np.ndarray:
    from scipy.stats import exponnorm

    return exponnorm.pdf(t, tau / sigma, loc=mu, scale=sigma)


def _rescale(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map the 1st-99th percentiles of ``values`` linearly to a margin inside [lo, hi]."""
    q1, q99 = np.percentile(values, [1, 99])
    span = q99 - q1 if q99 > q1 else 1.0
    margin = 0.05 * (hi - lo)
    return np.clip(lo + margin + (values - q1) / span * (hi - lo - 2 * margin), lo, hi)


def simulate_map(
    config: SimulationConfig, seed: int = 0, rt_model: RtModel | None = None
) -> tuple[Ms1Map, pd.DataFrame]:
    """Simulate one centroided MS1 run; returns the map and its truth (:data:`TRUTH_COLUMNS`)."""
    rng = np.random.default_rng(seed)
    pool = digest_peptides(config)
    chosen = rng.choice(len(pool), size=min(config.n_features, len(pool)), replace=False)
    peptides = [pool[i] for i in chosen]
    rt_values = (rt_model or hydrophobicity_rt)(peptides)
    rt_lo, rt_hi = config.rt_range
    rts = _rescale(np.asarray(rt_values, float), rt_lo, rt_hi) if config.rescale_rt else rt_values
    scan_rt = np.arange(rt_lo, rt_hi, config.scan_interval)
    weights = np.asarray(config.charge_weights, float) / np.sum(config.charge_weights)

    peak_scan: list[np.ndarray] = []
    peak_mz: list[np.ndarray] = []
    peak_int: list[np.ndarray] = []
    truth: list[dict[str, object]] = []
    for peptide, mu in zip(peptides, rts, strict=True):
        charge = int(rng.choice(config.charges, p=weights))
        masses, abundance = isotope_envelope(
            peptide_composition(peptide, config.carbamidomethyl), config.max_isotopes
        )
        keep = abundance >= config.min_isotope_abundance * abundance.max()
        keep &= np.cumsum(~keep) == 0  # stop at the first isotope below the threshold
        masses, abundance = masses[keep], abundance[keep] / abundance[keep].sum()
        mzs = (masses + charge * PROTON) / charge
        if mzs[0] < config.mz_range[0] or mzs[-1] > config.mz_range[1]:
            continue
        sigma = rng.uniform(*config.sigma_range)
        tau = rng.uniform(*config.tau_range)
        total = 10 ** rng.uniform(*config.log10_intensity)
        window = (scan_rt > mu - 5 * sigma) & (scan_rt < mu + 5 * sigma + 8 * tau)
        scans = np.flatnonzero(window)
        profile = _emg(scan_rt[scans], mu, sigma, tau) * config.scan_interval * total
        if len(scans) == 0 or profile.max() <= 0:
            continue
        clean = np.outer(profile, abundance)  # scans x isotopes
        noisy = clean * rng.lognormal(0.0, config.intensity_noise, clean.shape)
        seen = noisy >= config.detection_limit
        if seen[:, int(np.argmax(abundance))].sum() < config.min_scans:
            continue
        rows, isotopes = np.nonzero(seen)
        ppm = rng.normal(0.0, config.ppm_error, len(rows))
        peak_scan.append(scans[rows])
        peak_mz.append(mzs[isotopes] * (1 + ppm * 1e-6))
        peak_int.append(noisy[rows, isotopes])
        recorded = scans[np.flatnonzero(seen.any(axis=1))]
        truth.append(
            {
                "feature_id": len(truth),
                "peptide": peptide,
                "charge": charge,
                "mono_mz": float(mzs[0]),
                "rt_start": float(scan_rt[recorded[0]]),
                "rt_apex": float(scan_rt[scans[int(np.argmax(profile))]]),
                "rt_end": float(scan_rt[recorded[-1]]),
                "summed_intensity": float(noisy[seen].sum()),
                "n_isotopes": int(seen.any(axis=0).sum()),
            }
        )

    n_noise = rng.poisson(config.noise_peaks_per_scan, len(scan_rt))
    peak_scan.append(np.repeat(np.arange(len(scan_rt)), n_noise))
    peak_mz.append(rng.uniform(*config.mz_range, int(n_noise.sum())))
    peak_int.append(10 ** rng.uniform(*config.noise_log10_range, int(n_noise.sum())))
    ms1 = _assemble(
        scan_rt, np.concatenate(peak_scan), np.concatenate(peak_mz), np.concatenate(peak_int)
    )
    if config.profile:
        ms1 = to_profile(ms1, config.resolution, config.points_per_fwhm)
    frame = pd.DataFrame(truth, columns=list(TRUTH_COLUMNS))
    frame.attrs["n_peptides_drawn"] = len(peptides)
    return ms1, frame


def _assemble(
    scan_rt: np.ndarray, scan: np.ndarray, mz: np.ndarray, intensity: np.ndarray
) -> Ms1Map:
    """Peaks -> :class:`Ms1Map`, sorted by scan then m/z."""
    order = np.lexsort((mz, scan))
    counts = np.bincount(scan, minlength=len(scan_rt))
    return Ms1Map(
        rt=scan_rt,
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        mz=mz[order],
        intensity=intensity[order],
        spectrum_ids=[f"scan={i + 1}" for i in range(len(scan_rt))],
        source="simulated",
        centroided=True,
    )


def to_profile(ms1: Ms1Map, resolution: float = 60000.0, points_per_fwhm: float = 4.0) -> Ms1Map:
    """Centroids -> profile spectra: each peak a Gaussian (FWHM = m/z / resolution) sampled on a
    per-run log-m/z grid, overlapping peaks summed on shared points (as an instrument would).

    The grid has a constant ppm step, so every peak gets ``points_per_fwhm`` points per FWHM;
    points below 1 % of their peak are not written (profile files drop them too).
    """
    step = np.log1p(1.0 / resolution) / points_per_fwhm  # log-m/z step
    sigma = np.log1p(1.0 / resolution) / 2.3548
    half = int(np.ceil(3.0 * sigma / step))
    centre = np.log(ms1.mz) / step
    nearest = np.rint(centre).astype(np.int64)
    shifts = np.arange(-half, half + 1)
    bins = nearest[:, None] + shifts[None, :]
    weight = np.exp(-0.5 * ((bins - centre[:, None]) * step / sigma) ** 2)
    # scale so the sampled points keep the centroid's height as their maximum
    values = ms1.intensity[:, None] * weight
    scans = np.broadcast_to(ms1.spectrum_index()[:, None], bins.shape)
    keep = weight >= 0.01
    key = scans[keep].astype(np.int64) * (1 << 32) + (bins[keep] - bins.min())
    unique, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=values[keep])
    scan_of = unique >> 32
    mz = np.exp(((unique & ((1 << 32) - 1)) + bins.min()) * step)
    counts = np.bincount(scan_of, minlength=len(ms1))
    return Ms1Map(
        rt=ms1.rt,
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        mz=mz,
        intensity=summed,
        spectrum_ids=ms1.spectrum_ids,
        source=ms1.source,
        centroided=False,
    )


def write_simulated(
    path_prefix: str | PathLike[str], ms1: Ms1Map, truth: pd.DataFrame
) -> tuple[Path, Path]:
    """Save a simulated run as ``<prefix>.mzML`` and its truth as ``<prefix>.truth.tsv``.

    mzML (psims) so the peers (OpenMS, Biosaur2) run on exactly the map deepiso sees.
    """
    prefix = Path(path_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    centroided = ms1.centroided is not False
    map_path = write_ms1_mzml(ms1, prefix.with_name(prefix.name + ".mzML"), centroided=centroided)
    truth_path = prefix.with_name(prefix.name + ".truth.tsv")
    with atomic_path(truth_path) as partial:
        truth.to_csv(partial, sep="\t", index=False, float_format="%.6f")
    return map_path, truth_path


def read_truth(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a truth TSV written by :func:`write_simulated`."""
    return pd.read_csv(path, sep="\t")
