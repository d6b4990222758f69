"""Simulator: exact isotope envelopes (vs pyteomics), truth consistent with the map, saved runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from pyteomics import mass

from deepms.io.ms1map import read_ms1_map
from deepms.tasks.deepiso.simulate import (
    PROTON,
    TRUTH_COLUMNS,
    SimulationConfig,
    digest_peptides,
    isotope_envelope,
    peptide_composition,
    read_truth,
    simulate_map,
    write_simulated,
)

#: heavy isotopes by element: (pyteomics isotope number, nominal shift)
_HEAVY = {
    "C": [(13, 1)],
    "H": [(2, 1)],
    "N": [(15, 1)],
    "O": [(17, 1), (18, 2)],
    "S": [(33, 1), (34, 2)],
}
_LIGHT = {"C": 12, "H": 1, "N": 14, "O": 16, "S": 32}


def _pyteomics_envelope(
    composition: dict[str, int], n_peaks: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Enumerate every isotopologue up to +2 Da and let pyteomics give abundance and mass."""
    substitutions = [(e, iso, shift) for e in composition for iso, shift in _HEAVY[e]]
    prob, pmass = np.zeros(n_peaks), np.zeros(n_peaks)
    for k in range(3):
        for combo in itertools.combinations_with_replacement(substitutions, k):
            shift = sum(s for _, _, s in combo)
            if shift >= n_peaks:
                continue
            iso: dict[str, int] = {}
            for element, count in composition.items():
                iso[f"{element}[{_LIGHT[element]}]"] = count
            for element, number, _ in combo:
                iso[f"{element}[{_LIGHT[element]}]"] -= 1
                iso[f"{element}[{number}]"] = iso.get(f"{element}[{number}]", 0) + 1
            if min(iso.values()) < 0:  # more substitutions than atoms of that element
                continue
            iso = {k: v for k, v in iso.items() if v}
            abundance = mass.isotopic_composition_abundance(composition=iso)
            prob[shift] += abundance
            pmass[shift] += abundance * mass.calculate_mass(composition=iso)
    return pmass / prob, prob


def test_isotope_envelope_matches_pyteomics() -> None:
    peptide = "PEPTIDECK"  # with carbamidomethyl C (+C2H3NO): C45 H73 N11 O18 S1
    composition = peptide_composition(peptide)
    assert composition == {"C": 45, "H": 73, "N": 11, "O": 18, "S": 1}
    masses, abundance = isotope_envelope(composition, n_peaks=3)
    ref_masses, ref_abundance = _pyteomics_envelope(composition)
    assert masses[0] == pytest.approx(mass.calculate_mass(sequence=peptide) + 57.021464, abs=1e-5)
    np.testing.assert_allclose(abundance, ref_abundance, rtol=1e-9)
    np.testing.assert_allclose(masses, ref_masses, rtol=1e-12)
    # most probable composition from pyteomics is the +0 or +1 peak, whichever we call largest
    best, _ = mass.most_probable_isotopic_composition(composition=composition)
    shift = round(mass.calculate_mass(composition=best) - masses[0])
    assert shift == int(np.argmax(isotope_envelope(composition, 6)[1]))


def test_isotope_envelope_of_a_large_peptide_shifts_its_maximum() -> None:
    composition = peptide_composition("LVNELTEFAKTCVADESHAGCEKSLHTLFGDELCK")
    _, abundance = isotope_envelope(composition, n_peaks=8)
    assert np.argmax(abundance) == 2 and 0.98 < abundance.sum() < 1.0  # the tail beyond +7


PEPTIDES = (
    "SAMPLERK",
    "PEPTIDECK",
    "LVNELTEFAK",
    "AEFVEVTK",
    "QTALVELLK",
    "YLYEIAR",
    "HLVDEPQNLIK",
)


def _small(**overrides: object) -> SimulationConfig:
    base = dict(peptides=PEPTIDES, n_features=7, rt_range=(0.0, 120.0), noise_peaks_per_scan=5.0)
    base.update(overrides)
    return SimulationConfig(**base)  # type: ignore[arg-type]


def test_simulated_truth_agrees_with_the_map() -> None:
    config = _small(log10_intensity=(6.0, 6.5), ppm_error=2.0)
    ms1, truth = simulate_map(config, seed=3)
    assert list(truth.columns) == list(TRUTH_COLUMNS) and 5 <= len(truth) <= 7
    again, truth_again = simulate_map(config, seed=3)
    np.testing.assert_array_equal(again.mz, ms1.mz)  # deterministic per seed
    assert truth.equals(truth_again)
    assert all(np.all(np.diff(ms1.spectrum(i)[0]) >= 0) for i in range(len(ms1)))
    assert ms1.intensity.min() >= config.detection_limit * 0.999
    for row in truth.itertuples():
        composition = peptide_composition(row.peptide)
        expected = (isotope_envelope(composition, 1)[0][0] + row.charge * PROTON) / row.charge
        assert row.mono_mz == pytest.approx(expected, rel=1e-12)
        assert row.rt_start <= row.rt_apex <= row.rt_end
        apex = int(np.searchsorted(ms1.rt, row.rt_apex))
        mz, _ = ms1.spectrum(apex)
        assert np.min(np.abs(mz - row.mono_mz) / row.mono_mz) < 12e-6  # ~6 sd of 2 ppm
        assert 1 <= row.n_isotopes <= config.max_isotopes and row.summed_intensity > 0


def test_detection_limit_drops_weak_features_and_rt_hook_is_used() -> None:
    weak = _small(log10_intensity=(2.0, 2.5))
    _, truth = simulate_map(weak, seed=0)
    assert truth.empty
    fixed = _small(rescale_rt=False, log10_intensity=(6.0, 6.1), tau_range=(0.5, 0.6))
    _, truth = simulate_map(fixed, seed=0, rt_model=lambda seqs: np.full(len(seqs), 60.0))
    assert np.all(np.abs(truth["rt_apex"] - 60.0) <= 3.0)


def test_write_simulated_round_trip(tmp_path: Path) -> None:
    ms1, truth = simulate_map(_small(), seed=1)
    map_path, truth_path = write_simulated(tmp_path / "sim" / "run1", ms1, truth)
    assert map_path.name == "run1.mzML" and truth_path.name == "run1.truth.tsv"
    back = read_ms1_map(map_path, empty="keep")
    assert len(back) == len(ms1) and back.n_peaks == ms1.n_peaks
    np.testing.assert_allclose(back.mz, ms1.mz, rtol=1e-12)
    read = read_truth(truth_path)
    assert list(read["peptide"]) == list(truth["peptide"])
    np.testing.assert_allclose(read["mono_mz"], truth["mono_mz"], rtol=1e-9)


def test_digest_of_the_proteome(mirror: Path) -> None:
    fasta = mirror / "proteome" / "UP000000625_ecoli.fasta.gz"
    peptides = digest_peptides(SimulationConfig(fasta=str(fasta)))
    assert len(peptides) > 10_000 and len(set(peptides)) == len(peptides)
    lengths = np.array([len(p) for p in peptides])
    assert lengths.min() >= 7 and lengths.max() <= 30
    assert np.mean([p[-1] in "KR" for p in peptides]) > 0.9  # protein C-termini are the rest


def test_profile_mode_samples_each_centroid_as_a_peak() -> None:
    from deepms.io.ms1map import Ms1Map
    from deepms.tasks.deepiso.simulate import to_profile

    centroids = Ms1Map(
        rt=np.array([1.0, 2.0]),
        offsets=np.array([0, 2, 3]),
        mz=np.array([500.0, 500.004, 800.0]),  # the first two overlap at 60k (FWHM 8.3 mDa)
        intensity=np.array([1e5, 5e4, 2e5]),
    )
    profile = to_profile(centroids, resolution=60000.0, points_per_fwhm=4.0)
    assert profile.centroided is False and len(profile) == 2
    mz, intensity = profile.spectrum(1)
    assert np.all(np.diff(mz) > 0) and 6 <= len(mz) <= 30
    apex = int(np.argmax(intensity))
    assert mz[apex] == pytest.approx(800.0, rel=3e-6) and intensity[apex] > 0.9 * 2e5
    mz, intensity = profile.spectrum(0)
    assert np.all(np.diff(mz) > 0)  # overlapping peaks share grid points: one merged profile
    assert intensity.max() > 1e5  # summed where they overlap


def test_simulated_profile_map_is_written_as_profile(tmp_path: Path) -> None:
    ms1, truth = simulate_map(_small(profile=True), seed=2)
    assert ms1.centroided is False and not truth.empty
    map_path, _ = write_simulated(tmp_path / "p", ms1, truth)
    back = read_ms1_map(map_path, empty="keep")
    assert back.centroided is False and back.n_peaks == ms1.n_peaks
