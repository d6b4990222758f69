"""Patient-grouped parts of the spectra datamodule, checked by brute force over every fold."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.tasks.msi.reading import bin_spectra
from deepms.tasks.msi.spectra_data import SpectraDataModule

from .conftest import MSI, need


def write_set(tmp_path: Path, n_patients: int = 8, replicates: int = 2) -> list[str]:
    """A Fiedler-shaped set: patients x replicates, half tumour, two sites, 500 m/z points."""
    rng = np.random.default_rng(0)
    mass = np.linspace(1000, 2000, 500)
    rows, spectra = [], []
    for p in range(n_patients):
        label = "tumor" if p % 2 else "control"
        for r in range(replicates):
            spectra.append(rng.random(500).astype(np.float32) + (p % 2) * (mass > 1500))
            rows.append(
                {
                    "name": f"P{p}.R{r}",
                    "label": label,
                    "patient": f"P{p}",
                    "site": "a" if p < n_patients // 2 else "b",
                }
            )
    npz, csv = tmp_path / "set.npz", tmp_path / "set_metadata.csv"
    table = pd.DataFrame(rows)
    np.savez(
        npz,
        intensities=np.stack(spectra),
        mass=mass,
        label=table["label"].to_numpy(str),
        patient=table["patient"].to_numpy(str),
        site=table["site"].to_numpy(str),
    )
    table.to_csv(csv, index=False)
    return [str(npz), str(csv)]


def module(paths: list[str], cv: dict | None = None, **kw) -> SpectraDataModule:
    dm = SpectraDataModule(
        sources=[{"path": paths, "format": "fiedler_spectra"}],
        bin_width=10.0,
        split={"fractions": [0.5, 0.25, 0.25], "seed": 3},
        cv=cv,
        **kw,
    )
    dm.setup("fit")
    return dm


def parts_of(dm: SpectraDataModule) -> dict[str, set[str]]:
    """Patient -> the parts its spectra landed in."""
    out: dict[str, set[str]] = {}
    for part, data in dm.datasets.items():
        for group in data.groups:
            out.setdefault(group, set()).add(part)
    return out


def check_no_patient_split(dm: SpectraDataModule) -> None:
    """Brute force: every pair of spectra of one patient shares a part."""
    where = [(g, part) for part, data in dm.datasets.items() for g in data.groups]
    for (g1, p1), (g2, p2) in combinations(where, 2):
        if g1 == g2:
            assert p1 == p2, f"patient {g1} split between {p1} and {p2}"


SCHEMES = [
    {"scheme": "leave_one_group_out", "group_by": "patient"},
    {"scheme": "stratified_kfold", "n_splits": 4},
    {"scheme": "kfold", "n_splits": 4},
    {"scheme": "leave_one_group_out", "group_by": "site"},
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s["scheme"] + str(s.get("group_by")))
def test_folds_never_split_a_patient(tmp_path: Path, scheme: dict) -> None:
    paths = write_set(tmp_path)
    first = module(paths, cv={**scheme, "fold": 0, "seed": 1})
    tested: dict[str, int] = {}
    for fold in range(first.cv_folds or 0):
        dm = module(paths, cv={**scheme, "fold": fold, "seed": 1})
        check_no_patient_split(dm)
        assert all(len(parts) == 1 for parts in parts_of(dm).values())
        assert len(dm.datasets["val"]) > 0  # a validation patient for checkpointing
        for g in set(dm.datasets["test"].groups):
            tested[g] = tested.get(g, 0) + 1
    assert sorted(tested) == [f"P{p}" for p in range(8)]
    assert set(tested.values()) == {1}  # each patient tested exactly once


def test_plain_split_is_by_patient(tmp_path: Path) -> None:
    dm = module(write_set(tmp_path))
    check_no_patient_split(dm)
    assert dm.split_name.startswith("patient_grouped_50_25_25_seed3")
    assert dm.model_kwargs()["n_bins"] == 100
    assert dm.classes == ["control", "tumor"]


def test_binning_means_per_bin() -> None:
    mass = np.array([1.0, 1.5, 2.2, 2.4, 2.6, 3.9])
    values = np.array([[2.0, 4.0, 1.0, 2.0, 3.0, 8.0]], dtype=np.float32)
    centres, binned = bin_spectra(mass, values, 1.0, 1.0, 4.0)
    assert centres.tolist() == [1.5, 2.5, 3.5]
    assert binned[0].tolist() == [3.0, 2.0, 8.0]


def test_real_fiedler_leave_one_patient_out(tmp_path: Path) -> None:
    paths = [
        str(need(MSI / "maldiquant_fiedler2009subset.npz")),
        str(need(MSI / "maldiquant_fiedler2009subset_metadata.csv")),
    ]
    scheme = {"scheme": "leave_one_group_out", "group_by": "patient", "seed": 42}
    folds = module(paths, cv={**scheme, "fold": 0}).cv_folds
    assert folds == 8
    for fold in range(folds):
        dm = module(paths, cv={**scheme, "fold": fold})
        check_no_patient_split(dm)
        assert len(dm.datasets["test"]) == 2 and len(set(dm.datasets["test"].groups)) == 1


def test_tophat_baseline_removes_a_slow_offset_and_keeps_peaks() -> None:
    from deepms.tasks.msi.preprocess import tophat_baseline

    bins = np.arange(200, dtype=np.float32)
    spectrum = 5.0 + 0.01 * bins  # slow baseline
    spectrum[100] += 3.0  # a one-bin peak
    out = tophat_baseline(spectrum[None, :], 21)[0]
    assert out[100] == pytest.approx(3.0, abs=0.2)
    assert np.abs(np.delete(out, 100)).max() < 0.2
