"""Synthetic de novo spectra: peaks at hand-computed b/y m/z, noise as configured, reproducible."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.io.mgf import read_mgf
from deepms.tasks.deepnovo.synthetic import (
    NoiseSettings,
    SyntheticSettings,
    generate,
    synthetic_spectra,
)
from deepms.tasks.pdeep.data import N_META
from deepms.tasks.pdeep.model import PDeepModel
from deepms.tasks.pdeep.predict import PDeepPredictor

# Monoisotopic residue masses written out here, not taken from deepms (hand computation).
AA = {"P": 97.052764, "E": 129.042593, "T": 101.047679, "I": 113.084064, "D": 115.026943}
H2O, PROTON = 18.010565, 1.007276
CLEAN = NoiseSettings(p_missing=0.0, intensity_sigma=0.0, noise_peaks_mean=0.0, precursor_ppm=0.0)


def tiny_model() -> PDeepModel:
    torch.manual_seed(0)
    encoder = {"modifications": ["Carbamidomethyl@C", "Oxidation@M"]}
    return PDeepModel(21, N_META, [1, 2], encoder, hidden_size=8, num_layers=1).eval()


class FlatPredictor(PDeepPredictor):
    """The real predictor with every ion at intensity 1, so every possible b/y ion is a peak."""

    def _forward(self, tensors: tuple) -> np.ndarray:
        return np.ones((tensors[0].shape[0], tensors[0].shape[1] - 1, 4), dtype=np.float32)


def by_mz(sequence: str, charges: tuple[int, ...]) -> list[float]:
    masses = [AA[a] for a in sequence]
    out = []
    for k in range(1, len(sequence)):
        b, y = sum(masses[:k]), sum(masses[k:]) + H2O
        out += [(m + z * PROTON) / z for m in (b, y) for z in charges]
    return sorted(out)


def spectra(n: int, charge: int, noise: NoiseSettings, seed: int = 0) -> list:
    frame = pd.DataFrame({"peptide": ["PEPTIDE"] * n, "charge": charge, "collision_energy": 30.0})
    settings = SyntheticSettings(seed=seed, min_intensity=0.0, noise=noise)
    return list(synthetic_spectra(frame, FlatPredictor(tiny_model()), settings))


def test_clean_spectra_are_exactly_the_by_ions() -> None:
    assert by_mz("PEPTIDE", (1,))[2] == pytest.approx(227.102633, abs=1e-5)  # b2 = P + E + H+
    (two,) = spectra(1, 2, CLEAN)
    (three,) = spectra(1, 3, CLEAN)
    assert two.mz.tolist() == pytest.approx(by_mz("PEPTIDE", (1,)), abs=1e-5)  # z=2: only 1+
    assert three.mz.tolist() == pytest.approx(by_mz("PEPTIDE", (1, 2)), abs=1e-5)
    assert two.mz[2] == pytest.approx(227.102633, abs=1e-5)  # b2 in the spectrum
    neutral = sum(AA[a] for a in "PEPTIDE") + H2O  # 799.35999
    assert two.precursor_mz == pytest.approx((neutral + 2 * PROTON) / 2, abs=1e-5)
    assert two.peptide.to_proforma() == "PEPTIDE" and two.precursor_charge == 2
    np.testing.assert_allclose(two.intensity, 1.0)


def test_precursor_error_stays_within_the_configured_ppm() -> None:
    noise = dataclasses.replace(CLEAN, precursor_ppm=10.0)
    exact = (sum(AA[a] for a in "PEPTIDE") + H2O + 2 * PROTON) / 2
    ppm = np.array([(s.precursor_mz / exact - 1) * 1e6 for s in spectra(200, 2, noise)])
    assert np.all(np.abs(ppm) <= 10.0 + 1e-3)
    assert ppm.max() > 8 and ppm.min() < -8  # spread over the range, not a constant offset


def test_missing_peaks_jitter_and_noise_peaks_follow_the_settings() -> None:
    true = np.array(by_mz("PEPTIDE", (1, 2)))  # 24 ions at z=3
    dropped = spectra(300, 3, dataclasses.replace(CLEAN, p_missing=0.5))
    kept = np.mean([s.n_peaks for s in dropped]) / true.size
    assert kept == pytest.approx(0.5, abs=0.03)
    for s in dropped:
        assert np.all(np.min(np.abs(s.mz[:, None] - true[None]), axis=1) < 1e-5)

    noisy = spectra(300, 3, dataclasses.replace(CLEAN, noise_peaks_mean=10.0, mz_range=(50, 2e3)))
    extra = [s.n_peaks - true.size for s in noisy]
    assert np.mean(extra) == pytest.approx(10.0, abs=0.8) and np.var(extra) > 5  # Poisson
    neutral = sum(AA[a] for a in "PEPTIDE") + H2O
    for s in noisy:
        noise = np.min(np.abs(s.mz[:, None] - true[None]), axis=1) > 1e-5
        assert np.all(s.intensity[noise] <= 0.05) and np.all(s.intensity[~noise] == 1.0)
        assert np.all((s.mz[noise] >= 50) & (s.mz[noise] <= neutral + PROTON))

    jitter = spectra(100, 3, dataclasses.replace(CLEAN, intensity_sigma=0.3))
    spread = np.mean([np.std(np.log(s.intensity), ddof=1) for s in jitter])
    assert spread == pytest.approx(0.3, abs=0.03)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    model = tiny_model()
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def test_same_seed_same_file_read_back_with_labels(
    checkpoint: Path, tmp_path: Path, mirror: Path
) -> None:
    settings = SyntheticSettings(n_spectra=40, seed=3, oxidation_rate=0.5)
    first = generate(checkpoint, ["proteome_ecoli"], settings, tmp_path / "a", progress=False)
    again = generate(checkpoint, ["proteome_ecoli"], settings, tmp_path / "b", progress=False)
    assert first.name == again.name and first.read_bytes() == again.read_bytes()
    stamp = first.stat().st_mtime_ns
    assert generate(checkpoint, ["proteome_ecoli"], settings, tmp_path / "a") == first
    assert first.stat().st_mtime_ns == stamp  # reused from the cache, not rewritten
    other = generate(
        checkpoint, ["proteome_ecoli"], dataclasses.replace(settings, seed=4), tmp_path
    )
    assert other.name != first.name and other.read_bytes() != first.read_bytes()

    read = list(read_mgf(first))
    labels = [line[4:] for line in first.read_text().splitlines() if line.startswith("SEQ=")]
    assert len(read) == len(labels) == 40
    assert [s.peptide.to_proforma() for s in read] == labels
    assert len(set(labels)) == 40 and any("M[Oxidation]" in x for x in labels)
    for s in read:
        seq = s.peptide.sequence
        assert 7 <= len(seq) <= 25 and s.precursor_charge in (2, 3)
        assert all(m is not None for m, a in zip(s.peptide.mods[1:], seq, strict=False) if a == "C")
        assert abs(s.precursor_mz / s.peptide.precursor_mz(s.precursor_charge) - 1) <= 10e-6
        assert 25 <= s.collision_energy <= 35 and s.intensity.max() == pytest.approx(1.0)
