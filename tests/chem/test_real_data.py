"""Every peptide in the mirrored real data parses, and masses agree with what the files record.

Reads ``$DEEPMS_DATA_MIRROR`` (default /work/shared/data); each test skips when its file is absent.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from deepms.chem import (
    fragment_mz,
    parse_deeplc,
    parse_deeprt,
    parse_pdeep2,
    parse_peprec,
    parse_unimod_bracket,
)

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))


def need(relative: str) -> Path:
    path = MIRROR / relative
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    return path


def test_ms2pip_peprec_parses_and_matches_mgf_precursor() -> None:
    peprec = need("pdeep/ms2pip_massivekb_selected_500.peprec")
    mgf_path = need("pdeep/ms2pip_massivekb_selected_500.mgf")
    pepmass: dict[str, float] = {}
    title = None
    for line in mgf_path.read_text().splitlines():
        if line.startswith("TITLE="):
            title = line[6:].strip()
        elif line.startswith("PEPMASS=") and title is not None:
            pepmass[title] = float(line[8:].split()[0])
    rows = [line.split() for line in peprec.read_text().splitlines()[1:] if line.strip()]
    assert len(rows) == 500
    names = set()
    for spec_id, mods, sequence, charge in rows:
        pep = parse_peprec(sequence, mods)
        names.update(m.name for m in pep.mods if m is not None)
        ppm = (pep.precursor_mz(int(charge)) - pepmass[spec_id]) / pepmass[spec_id] * 1e6
        assert abs(ppm) < 20, (spec_id, sequence, mods, ppm)
    expected = {"Acetyl", "Carbamidomethyl", "Carbamyl", "Deamidated", "Oxidation"}
    assert expected | {"Gln->pyro-Glu"} == names


@pytest.mark.parametrize(
    "name", ["pdeep2_PT21Mod_Kmod_Malonyl_3xHCD_R1.plabel", "pdeep2_example.plabel"]
)
def test_pdeep2_plabel_parses(name: str) -> None:
    path = need(f"pdeep/{name}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    peptides = [parse_pdeep2(r["peptide"], r["modinfo"]) for r in rows]
    assert peptides and all(p.is_modified for p in peptides)


def test_dlomix_parquet_matches_recorded_fragment_mz() -> None:
    pd = pytest.importorskip("pandas")
    path = need("pdeep/dlomix_proteometools_third_pool_sample.parquet")
    df = pd.read_parquet(path, columns=["modified_sequence", "mass_analyzer", "masses_raw"])
    ppm_errors, da_errors = [], []
    for seq, analyzer, recorded in df.itertuples(index=False):
        pep = parse_unimod_bracket(seq)
        n = pep.length
        theo = fragment_mz(pep, charges=(1, 2, 3))
        # Prosit layout per ion number p: y1+, y2+, y3+, b1+, b2+, b3+ (observed m/z, 0 = none)
        observed = np.asarray(recorded).reshape(29, 6)[: n - 1]
        expected = np.concatenate([theo[::-1, 1, :, 0], theo[:, 0, :, 0]], axis=1)
        seen = observed > 0
        if analyzer == "FTMS":
            ppm_errors.append(((observed - expected) / expected * 1e6)[seen])
        else:
            da_errors.append((observed - expected)[seen])
    ppm = np.abs(np.concatenate(ppm_errors))
    assert np.median(ppm) < 3 and np.mean(ppm <= 20) > 0.99
    assert np.abs(np.concatenate(da_errors)).max() <= 0.5


@pytest.mark.parametrize("name", ["deeplc_seqs_exp.csv", "deeplc_test_pred.csv"])
def test_deeplc_modified_sets_parse(name: str) -> None:
    path = need(f"deeprt/{name}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    peptides = [parse_deeplc(r["seq"], r["modifications"]) for r in rows]
    assert len(peptides) == len(rows) > 0
    assert any(p.is_modified for p in peptides)


@pytest.mark.parametrize(
    "name", ["deeprt_mod.txt", "deeprt_mod_train_2.txt", "deeprt_mod_test_2.txt"]
)
def test_deeprt_digit_files_parse(name: str) -> None:
    path = need(f"deeprt/{name}")
    texts = [line.split("\t")[0] for line in path.read_text().splitlines()[1:] if line.strip()]
    peptides = [parse_deeprt(text) for text in texts]
    n_digits = sum(c.isdigit() for text in texts for c in text)
    n_mods = sum(m is not None for p in peptides for m in p.mods)
    assert len(peptides) == len(texts) > 0 and n_mods == n_digits > 0
