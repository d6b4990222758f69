"""deepnovo data: vocabulary rules, preprocessing, peaks rebuilt from annotations, the split."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.chem import PROTON, Peptide, fragment_mz, parse_proforma
from deepms.io.spectrum import AnnotatedSpectrum
from deepms.tasks.deepnovo.preprocess import Preprocessor, rebuild_peaks
from deepms.tasks.deepnovo.vocab import (
    EOS_ID,
    PAD_ID,
    UnknownResidueError,
    Vocabulary,
    build_vocabulary,
)


def test_vocabulary_folds_il_and_fixes_cysteine_with_hand_computed_masses() -> None:
    vocab = Vocabulary()
    assert vocab.tokens[:2] == ["<pad>", "<eos>"] and (PAD_ID, EOS_ID) == (0, 1)
    assert "I" not in vocab.index and "C" not in vocab.index
    # C3H5NOS (103.00919) + carbamidomethyl C2H3NO (57.02146)
    assert vocab.masses[vocab.index["C[UNIMOD:4]"]] == pytest.approx(160.03065, abs=1e-5)
    assert vocab.masses[vocab.index["M[UNIMOD:35]"]] == pytest.approx(147.03540, abs=1e-5)
    assert vocab.encode(parse_proforma("PEPIDE")) == vocab.encode(parse_proforma("PEPLDE"))
    ids = vocab.encode(Peptide("ACK"))  # plain C read as carbamidomethylated (fixed)
    assert vocab.decode([*ids, EOS_ID, 5]) == ["A", "C[UNIMOD:4]", "K"]
    kept = Vocabulary(equate_il=False)
    assert kept.decode(kept.encode(Peptide("PEPIDE")))[3] == "I"
    strict = Vocabulary(fixed_cysteine=False)
    with pytest.raises(UnknownResidueError, match="residue C is not in the vocabulary"):
        strict.encode(Peptide("ACK"))
    with pytest.raises(UnknownResidueError, match=r"S\[UNIMOD:21\]"):
        vocab.encode(parse_proforma("PES[Phospho]K"))


def test_auto_extra_modifications_need_min_count_and_round_trip() -> None:
    peptides = [parse_proforma("AK[Malonyl]R")] * 3 + [parse_proforma("N[Deamidated]K")]
    vocab = build_vocabulary("auto", min_count=2, training_peptides=peptides)
    assert vocab.extra_tokens == ["K[UNIMOD:747]"]
    assert vocab.masses[-1] == pytest.approx(128.09496 + 86.00039, abs=1e-4)
    named = build_vocabulary(["Malonyl@K", "Acetyl@N-term"])
    assert named.n_terminal_ids == [named.index["[UNIMOD:1]-"]]
    peptide = parse_proforma("[Acetyl]-PEK[Malonyl]")
    assert named.to_peptide(named.decode(named.encode(peptide))) == peptide
    assert Vocabulary.from_dict(named.to_dict()).tokens == named.tokens
    changed = {**named.to_dict(), "masses": [m + 0.01 for m in named.masses]}
    with pytest.raises(ValueError, match="masses differ"):
        Vocabulary.from_dict(changed)


def test_preprocessing_removes_precursor_caps_peaks_and_scales() -> None:
    # precursor 500 m/z 2+: neutral 997.985, 1+ form at 998.993 Da
    mz = np.array([40.0, 100.0, 200.0, 300.0, 499.5, 600.0, 998.9, 3000.0])
    intensity = np.array([50.0, 4.0, 16.0, 100.0, 900.0, 64.0, 400.0, 25.0])
    steps = Preprocessor(min_mz=50, max_mz=2500, remove_precursor_tol=2.0, max_peaks=3)
    out_mz, out_int = steps(mz, intensity, precursor_mz=500.0, charge=2)
    np.testing.assert_allclose(out_mz, [200.0, 300.0, 600.0])  # top 3 of 100, 200, 300, 600
    np.testing.assert_allclose(out_int, [0.4, 1.0, 0.8], rtol=1e-6)  # sqrt 4, 10, 8 over 10
    logged = Preprocessor(max_peaks=None, scaling="log", normalise="none", min_intensity=0.0)
    _, values = logged(mz, intensity, 500.0, 2)
    np.testing.assert_allclose(values, np.log1p([4.0, 16.0, 100.0, 64.0]), rtol=1e-6)
    l2 = Preprocessor(remove_precursor_tol=None, scaling="none", normalise="l2", max_peaks=2)
    _, values = l2(mz, intensity, 500.0, 2)
    np.testing.assert_allclose(values, np.array([900.0, 400.0]) / np.hypot(900, 400), rtol=1e-6)
    assert Preprocessor(min_peaks=5, max_peaks=3)(mz, intensity, 500.0, 2) is None
    with pytest.raises(ValueError, match="scaling"):
        Preprocessor(scaling="cube")


def test_peaks_rebuilt_from_an_annotation_sit_at_hand_computed_mz() -> None:
    peptide = Peptide("PEK")  # b1 = P + proton, y1 = K + H2O + proton
    intensities = np.zeros((2, 2, 3), dtype=np.float32)
    intensities[0, 0, 0] = 10.0  # b1+
    intensities[0, 1, 0] = 30.0  # y2+ (bond 0 -> y2)
    intensities[1, 1, 0] = 20.0  # y1+
    intensities[1, 1, 1] = 5.0  # y1 2+, allowed: precursor 2+
    intensities[1, 1, 2] = 7.0  # y1 3+, above the precursor charge: left out
    intensities[1, 0, 0] = -1.0  # impossible (Prosit's -1): left out
    losses = {"NH3": np.zeros_like(intensities)}
    losses["NH3"][0, 0, 0] = 3.0
    record = AnnotatedSpectrum("x", peptide, 2, intensities, metadata={"losses": losses})
    mz, intensity = rebuild_peaks(record)
    b1 = 97.05276 + PROTON
    y1 = 128.09496 + 18.010565 + PROTON
    y2 = 129.04259 + 128.09496 + 18.010565 + PROTON
    expected = sorted(
        [(b1 - 17.026549, 3.0), (b1, 10.0), ((y1 + PROTON) / 2, 5.0), (y1, 20.0), (y2, 30.0)]
    )
    np.testing.assert_allclose(mz, [m for m, _ in expected], atol=1e-4)
    np.testing.assert_allclose(intensity, [i for _, i in expected])
    np.testing.assert_allclose(mz[-1], fragment_mz(peptide, charges=(1,))[0, 1, 0, 0], atol=1e-6)


def _module(mirror, **overrides):
    from deepms.tasks.deepnovo.data import DeNovoDataModule

    sources = [
        {"dataset": "deepnovo_casanovo_sample", "format": "mgf_seq"},
        {"dataset": "pdeep_massivekb", "format": "peprec_mgf"},
        {"dataset": "pdeep_pdeep2_kmod_malonyl", "format": "plabel"},
        {"dataset": "pdeep_dlomix_proteometools", "format": "prosit_parquet"},
    ]
    kwargs = {"sources": sources, "mirror": str(mirror), "split": {"seed": 3}, **overrides}
    return DeNovoDataModule(**kwargs)


def test_split_of_real_spectra_is_peptide_disjoint(mirror) -> None:
    from deepms.tasks.deepnovo.data import peptide_group

    dm = _module(mirror, limit_per_source=300)
    dm.setup()
    groups = {k: {peptide_group(s.peptide) for s in v.samples} for k, v in dm.datasets.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    lineage = dm.lineage()
    assert lineage["split"] == "peptide_grouped_80_10_10_seed3"
    assert sum(lineage["n_samples"].values()) == sum(len(v) for v in dm.datasets.values())
    assert set(lineage["n_samples_per_source"]) == set(dm.source_names)
    assert all(s.tokens is not None and len(s.tokens) for s in dm.datasets["test"].samples)
    assert "K[UNIMOD:747]" in lineage["vocabulary"]  # malonyl: every pDeep2 PSM carries it
    # The PEPREC's N-terminal carbamylation is rare: those labels are dropped and counted.
    assert lineage["dropped"]["pdeep_massivekb: residue [UNIMOD:5]- not in vocabulary"] > 0


def test_a_train_only_source_by_path_keeps_val_and_test_real(mirror, tmp_path) -> None:
    from deepms.io import read_mgf, write_mgf
    from deepms.tasks.deepnovo.data import peptide_group

    real = mirror / "deepnovo" / "casanovo_sample_preprocessed_spectra.mgf"
    spectra = list(read_mgf(real))
    synthetic = tmp_path / "synthetic.mgf"
    write_mgf(spectra, synthetic)  # the same peptides: some are val/test peptides of the real split
    sources = [
        {"dataset": "deepnovo_casanovo_sample", "format": "mgf_seq"},
        {"path": str(synthetic), "format": "mgf_seq", "role": "train"},
    ]
    dm = _module(mirror, sources=sources)
    dm.setup()
    names = dm.source_names
    assert names == ["deepnovo_casanovo_sample", "synthetic"]
    for part in ("val", "test"):
        assert all(names[s.source] != "synthetic" for s in dm.datasets[part].samples)
    held_out = {peptide_group(s.peptide) for p in ("val", "test") for s in dm.datasets[p].samples}
    train = {peptide_group(s.peptide) for s in dm.datasets["train"].samples}
    assert held_out and not held_out & train
    dropped = dm.lineage()["dropped"]["synthetic: peptide held out by another source"]
    assert dropped == sum(len(dm.datasets[p]) for p in ("val", "test"))
    assert str(synthetic) in dm.lineage()["datasets"]["synthetic"]


def test_records_become_labelled_spectra_by_their_type() -> None:
    from deepms.io import Spectrum
    from deepms.tasks.deepnovo.sources import labelled

    peptide = parse_proforma("PEK")
    peaks = Spectrum("s", np.array([100.0, 200.0]), np.array([1.0, 2.0]), 188.6, 2, peptide=peptide)
    plain = labelled(peaks)
    assert plain.peptide is peptide and plain.mz.tolist() == [100.0, 200.0]
    assert (plain.charge, plain.precursor_mz) == (2, 188.6)
    unlabelled = labelled(Spectrum("u", np.array([1.0]), np.array([1.0]), None, 2, peptide=peptide))
    assert unlabelled.peptide is None  # no precursor m/z: counted and dropped by the module
    ions = np.zeros((2, 2, 3))
    ions[0, 0, 0] = 4.0  # b1+
    rebuilt = labelled(AnnotatedSpectrum("a", peptide, 2, ions))
    assert rebuilt.mz.tolist() == pytest.approx([97.052764 + PROTON], abs=1e-5)
    assert rebuilt.precursor_mz == pytest.approx(peptide.precursor_mz(2))
    with pytest.raises(TypeError, match="not str records"):
        labelled("PEK")


def test_a_role_deepnovo_cannot_serve_is_refused() -> None:
    from deepms.tasks.deepnovo.data import DeNovoDataModule

    with pytest.raises(ValueError, match="role must be one of"):
        DeNovoDataModule(sources=[{"path": "/x.mgf", "format": "mgf_seq", "role": "hard"}])
