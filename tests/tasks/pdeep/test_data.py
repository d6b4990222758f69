"""pdeep samples: masking of impossible ions, normalisation, acquisition features, padding."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.chem import parse_proforma
from deepms.chem.encoding import PeptideEncoder
from deepms.io import AnnotatedSpectrum
from deepms.tasks.pdeep.data import (
    MAX_CHARGE,
    N_META,
    SpectrumDataset,
    collate,
    ion_mask,
    make_sample,
    meta_features,
)


def test_meta_features_flag_unknown_collision_energy() -> None:
    known = meta_features(2, 28.0, "HCD", "FTMS")
    unknown = meta_features(3, None, None, None)
    assert known.shape == unknown.shape == (N_META,)
    assert known[1] == 1.0 and unknown[2] == 1.0  # charge one-hot
    assert known[MAX_CHARGE] == pytest.approx(0.28) and known[MAX_CHARGE + 1] == 1.0
    assert unknown[MAX_CHARGE] == 0.0 and unknown[MAX_CHARGE + 1] == 0.0  # not invented
    assert unknown[-1] == 1.0 and unknown[MAX_CHARGE + 4] == 1.0  # "unknown" slots


def test_ion_mask_hides_fragments_above_precursor_charge() -> None:
    mask = ion_mask(3, precursor_charge=1, fragment_charges=(1, 2))
    assert mask.tolist() == [[True, False, True, False]] * 3
    assert ion_mask(2, 2, (1, 2)).all()


def _record(charge: int, _raw: np.ndarray | None = None) -> AnnotatedSpectrum:
    """A record of PEPTK; the targets under test are passed to make_sample separately."""
    return AnnotatedSpectrum("r1", parse_proforma("PEPTK"), charge, np.zeros((4, 2, 3)))


def test_make_sample_normalises_and_masks_source_impossible_ions() -> None:
    raw = np.zeros((4, 2, 2), dtype=np.float32)
    raw[0, 0, 0] = 50.0  # b1+
    raw[2, 1, 0] = 200.0  # y2+
    raw[1, 1, 1] = -1.0  # source says impossible
    sample = make_sample(_record(2, raw), raw, (1, 2), source=0, overrides={})
    assert sample is not None
    assert sample.target.shape == (4, 4)
    assert sample.target.max() == 1.0 and sample.target[0, 0] == pytest.approx(0.25)
    assert not sample.mask[1, 3] and sample.target[1, 3] == 0.0
    assert sample.mask.sum() == 15


def test_make_sample_drops_spectrum_without_intensity() -> None:
    raw = np.zeros((4, 2, 2), dtype=np.float32)
    assert make_sample(_record(2, raw), raw, (1, 2), source=0, overrides={}) is None


def test_source_overrides_fill_unknown_acquisition_only() -> None:
    raw = np.ones((4, 2, 2), dtype=np.float32)
    sample = make_sample(_record(2, raw), raw, (1, 2), 0, {"fragmentation": "CID"})
    assert sample.meta[MAX_CHARGE + 3] == 1.0  # CID slot


def test_collate_pads_residues_and_bonds() -> None:
    samples = []
    for text in ("PEPTK", "PEPTIDEK"):
        peptide = parse_proforma(text)
        raw = np.ones((len(text) - 1, 2, 2), dtype=np.float32)
        record = AnnotatedSpectrum("x", peptide, 2, np.zeros((len(text) - 1, 2, 3)))
        samples.append(make_sample(record, raw, (1, 2), 0, {}))
    dataset = SpectrumDataset(samples, PeptideEncoder())
    batch = collate([dataset[0], dataset[1]])
    assert batch["residues"].shape == (2, 8)
    assert batch["target"].shape == (2, 7, 4)
    assert batch["lengths"].tolist() == [5, 8]
    assert not batch["mask"][0, 4:].any() and batch["mask"][0, :4].all()
    assert batch["peptides"] == ["PEPTK", "PEPTIDEK"]


def test_real_sources_split_by_peptide_without_leak(mirror) -> None:
    from deepms.tasks.pdeep.data import PDeepDataModule

    sources = [
        {"dataset": "pdeep_massivekb", "format": "peprec_mgf"},
        {"dataset": "pdeep_pdeep2_kmod_malonyl", "format": "plabel"},
        {"dataset": "pdeep_dlomix_proteometools", "format": "prosit_parquet"},
    ]
    dm = PDeepDataModule(
        sources=sources, mirror=str(mirror), limit_per_source=300, split={"seed": 3}
    )
    dm.setup()
    peptides = {k: {s.peptide.sequence for s in v.samples} for k, v in dm.datasets.items()}
    assert not peptides["train"] & peptides["val"]
    assert not peptides["train"] & peptides["test"]
    assert not peptides["val"] & peptides["test"]
    assert sum(len(v) for v in dm.datasets.values()) == 900  # 300 kept per source
    lineage = dm.lineage()
    assert lineage["split"] == "peptide_grouped_80_10_10_seed3"
    assert set(lineage["datasets"]) == {s["dataset"] for s in sources}
    sources_seen = {s.source for s in dm.datasets["train"].samples}
    assert sources_seen == {0, 1, 2}
    batch = next(iter(dm.train_dataloader()))
    lengths = batch["lengths"]
    assert batch["target"].shape[1] == int(lengths.max()) - 1


def test_targets_come_from_what_the_record_holds_not_its_format() -> None:
    from deepms.io import Spectrum
    from deepms.tasks.pdeep.data import record_targets

    peptide = parse_proforma("PEK")
    ions = np.arange(12, dtype=np.float32).reshape(2, 2, 3)  # [bonds, b/y, z=1..3]
    annotated = AnnotatedSpectrum("a", peptide, 3, ions)
    np.testing.assert_array_equal(record_targets(annotated, (1, 2), 20.0, "ppm"), ions[..., :2])
    # a peak list is annotated: peaks at b1+ (P + H+) and y1+ (K + H2O + H+), nothing else
    b1, y1 = 97.052764 + 1.007276, 128.094963 + 18.010565 + 1.007276
    peaks = Spectrum("p", np.array([b1, y1]), np.array([5.0, 7.0]), 400.0, 2, peptide=peptide)
    raw = record_targets(peaks, (1, 2), 20.0, "ppm")
    assert raw.shape == (2, 2, 2)
    assert raw[0, 0, 0] == 5.0 and raw[1, 1, 0] == 7.0 and raw.sum() == 12.0


def test_an_unknown_role_is_refused() -> None:
    from deepms.tasks.pdeep.data import PDeepDataModule

    with pytest.raises(ValueError, match="roles"):
        PDeepDataModule(sources=[{"path": "/x.plabel", "format": "plabel", "role": "hard"}])
