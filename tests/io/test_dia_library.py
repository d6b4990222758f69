"""DIA libraries: OpenSWATH/DIA-NN TSV and PQP round trips, real files, pseudo-reverse decoys."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.errors import DataFormatError
from deepms.io.dia_decoys import SKIPPED, pseudo_reverse, pseudo_reverse_decoys
from deepms.io.dia_library import (
    DIA_COLUMNS,
    DIA_FORMATS,
    canonical,
    normalise_peptide,
    openswath_peptide,
    read_dia_library,
    read_library_tsv,
    to_dia_table,
    write_dia_library,
)
from deepms.io.library import parse_library_peptide

PROTON = 1.007276466812
H2O = 18.0105646837
# monoisotopic residue masses, by hand
P, E, D, K = 97.05276385, 129.04259309, 115.02694303, 128.09496302
ILE = 113.08406398
SUFFIX = {"openswath": ".tsv", "diann": ".tsv", "pqp": ".pqp"}
REAL = {  # file -> (transitions, precursors), counts from data/dia/SOURCE.md
    "alphapeptdeep_sample_openswath_library.tsv": (106, 18),
    "massdash_diann_test_1_lib.tsv": (216, 8),
    "massdash_spyogenes_test.pqp": (24, 4),
}


def predicted() -> pd.DataFrame:
    """Predicted library rows as the pdeep predictor writes them (plus RT and proteins)."""
    rows = [
        ("(UniMod:1)PEPTIDEK", 2, "y", 3, 1, "noloss", 1.0, 12.5, "P1;P2"),
        ("(UniMod:1)PEPTIDEK", 2, "b", 4, 1, "H2O", 0.25, 12.5, "P1;P2"),
        ("(UniMod:1)PEPTIDEK", 2, "y", 6, 2, "noloss", 0.5, 12.5, "P1;P2"),
        ("AC(UniMod:4)DEM(UniMod:35)R", 3, "y", 2, 1, "noloss", 1.0, -3.25, "P3"),
        ("AC(UniMod:4)DEM(UniMod:35)R", 3, "b", 2, 1, "noloss", 0.125, -3.25, "P3"),
        ("AC(UniMod:4)DEM(UniMod:35)R", 2, "y", 4, 1, "noloss", 0.75, -3.25, "P3"),
    ]
    names = ["ModifiedPeptide", "PrecursorCharge", "FragmentType", "FragmentNumber"]
    names += ["FragmentCharge", "FragmentLossType", "RelativeIntensity"]
    frame = pd.DataFrame(rows, columns=[*names, "NormalizedRetentionTime", "ProteinId"])
    peptides = [parse_library_peptide(p) for p in frame["ModifiedPeptide"]]
    frame["StrippedPeptide"] = [p.sequence for p in peptides]
    frame["PrecursorMz"] = [
        p.precursor_mz(z) for p, z in zip(peptides, frame.PrecursorCharge, strict=True)
    ]
    frame["FragmentMz"] = np.linspace(200.123456789, 900.987654321, len(frame))
    frame["RelativeIntensity"] = frame["RelativeIntensity"].astype(np.float32)
    return frame


def library() -> pd.DataFrame:
    targets = to_dia_table(predicted())
    return pd.concat([targets, pseudo_reverse_decoys(targets)], ignore_index=True)


@pytest.mark.parametrize("fmt", DIA_FORMATS)
def test_round_trip_write_read_same_rows(tmp_path: Path, fmt: str) -> None:
    table = library()
    assert list(table.columns) == DIA_COLUMNS and table["Decoy"].sum() == 6
    path = tmp_path / f"lib{SUFFIX[fmt]}"
    assert write_dia_library(table, path, fmt) == len(table)
    assert not list(tmp_path.glob("*.part"))
    back = read_dia_library(path)
    pd.testing.assert_frame_equal(back, table)
    again = tmp_path / f"again{SUFFIX[fmt]}"  # chunked writing gives the same file content
    write_dia_library([table.iloc[:4], table.iloc[4:]], again, fmt)
    pd.testing.assert_frame_equal(read_dia_library(again), table)


def test_layouts_use_each_tools_column_names(tmp_path: Path) -> None:
    table = library()
    write_dia_library(table, tmp_path / "os.tsv", "openswath")
    write_dia_library(table, tmp_path / "nn.tsv", "diann")
    header = pd.read_csv(tmp_path / "os.tsv", sep="\t", nrows=1).columns
    for name in ("PrecursorMz", "ProductMz", "LibraryIntensity", "NormalizedRetentionTime"):
        assert name in header
    for name in ("ModifiedPeptideSequence", "ProductCharge", "FragmentSeriesNumber", "Decoy"):
        assert name in header
    assert {"TransitionGroupId", "TransitionId", "ProteinId", "Annotation"} <= set(header)
    openswath = pd.read_csv(tmp_path / "os.tsv", sep="\t")
    assert openswath["ModifiedPeptideSequence"].iloc[0] == ".(UniMod:1)PEPTIDEK"
    assert openswath["Annotation"].tolist()[:3] == ["y3", "b4-H2O", "y6^2"]
    diann = pd.read_csv(tmp_path / "nn.tsv", sep="\t")
    assert {"Tr_recalibrated", "ModifiedPeptide", "FragmentCharge", "decoy"} <= set(diann.columns)
    assert diann["ModifiedPeptide"].iloc[0] == "(UniMod:1)PEPTIDEK"
    write_dia_library(table, tmp_path / "lib.pqp")
    with closing(sqlite3.connect(tmp_path / "lib.pqp")) as db:  # the OpenSWATH schema
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"PROTEIN", "PEPTIDE", "PRECURSOR", "TRANSITION", "VERSION"} <= names
        assert {"PEPTIDE_PROTEIN_MAPPING", "TRANSITION_PRECURSOR_MAPPING"} <= names
        assert db.execute("SELECT COUNT(*) FROM PROTEIN").fetchone() == (6,)  # 3 + 3 decoys
        assert db.execute("SELECT COUNT(*) FROM PRECURSOR WHERE DECOY=1").fetchone() == (3,)


def test_notations() -> None:
    assert normalise_peptide(".(UniMod:1)PEPTIDEK") == "(UniMod:1)PEPTIDEK"
    assert normalise_peptide("_PEPC(UniMod:4)K_") == "PEPC(UniMod:4)K"
    assert normalise_peptide("PEPTIDEK.(UniMod:2)") == "PEPTIDEK-(UniMod:2)"
    assert openswath_peptide("(UniMod:1)PEPTIDEK-(UniMod:2)") == ".(UniMod:1)PEPTIDEK.(UniMod:2)"


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_libraries(mirror: Path, tmp_path: Path, name: str) -> None:
    table = read_dia_library(mirror / "dia" / name)
    transitions, precursors = REAL[name]
    assert len(table) == transitions and table["PrecursorId"].nunique() == precursors
    assert table["Decoy"].eq(0).all() and table[["PrecursorMz", "FragmentMz"]].gt(100).all().all()
    assert table["FragmentType"].isin(["b", "y"]).all()
    assert table["NormalizedRetentionTime"].notna().all()
    for fmt in DIA_FORMATS:  # every real library survives every format
        path = tmp_path / f"copy_{fmt}{SUFFIX[fmt]}"
        write_dia_library(table, path, fmt)
        pd.testing.assert_frame_equal(read_dia_library(path), table)


def test_pqp_details(mirror: Path) -> None:
    table = read_dia_library(mirror / "dia" / "massdash_spyogenes_test.pqp")
    first = table.iloc[0]
    assert (first.ModifiedPeptide, first.PrecursorCharge, first.PrecursorMz) == (
        "DYASIDAAPEER",
        2,
        668.804,
    )
    assert (
        first.ProteinId == "Spyo_Exp3652_DDB_SeqID_514830" and first.NormalizedRetentionTime == 13.3
    )


def test_pseudo_reverse_by_hand() -> None:
    peptide = parse_library_peptide("(UniMod:1)PEM(UniMod:35)TIDEK")
    decoy = pseudo_reverse(peptide)
    assert decoy.sequence == "EDITMEPK" and decoy.mods[0] is not None  # N-term acetyl stays
    assert decoy.mods[5] is not None and decoy.mods[5].unimod_id == 35  # M moved with its mod
    assert pseudo_reverse(parse_library_peptide("PEPTIDEK")).sequence == "EDITPEPK"
    rows = pd.DataFrame(
        {
            "ModifiedPeptide": "PEPTIDEK",
            "PrecursorCharge": 2,
            "PrecursorMz": 464.73474,
            "FragmentType": ["b", "y", "y", "b"],
            "FragmentNumber": [2, 3, 3, 3],
            "FragmentCharge": [1, 1, 2, 1],
            "FragmentLossType": ["noloss", "noloss", "noloss", "H2O"],
            "FragmentMz": 0.0,  # ignored: recomputed for the decoy
            "RelativeIntensity": [1.0, 0.5, 0.25, 0.1],
            "NormalizedRetentionTime": 10.0,
            "ProteinId": "PROT",
            "PrecursorId": "PEPTIDEK_2",
            "TransitionId": ["t1", "t2", "t3", "t4"],
        }
    )
    decoys = pseudo_reverse_decoys(rows)
    assert decoys["ModifiedPeptide"].unique().tolist() == ["EDITPEPK"]
    b2 = E + D + PROTON  # ED
    y3 = E + P + K + H2O + PROTON  # EPK
    b3_h2o = E + D + ILE - H2O + PROTON  # EDI - H2O
    np.testing.assert_allclose(
        decoys["FragmentMz"], [b2, y3, (y3 + PROTON) / 2, b3_h2o], rtol=0, atol=1e-6
    )
    assert decoys["PrecursorMz"].iloc[0] == pytest.approx(464.73474, abs=1e-5)  # same mass
    assert decoys["TransitionId"].tolist() == ["DECOY_t1", "DECOY_t2", "DECOY_t3", "DECOY_t4"]
    assert set(decoys["PrecursorId"]) == {"DECOY_PEPTIDEK_2"}
    assert set(decoys["ProteinId"]) == {"DECOY_PROT"} and decoys["Decoy"].eq(1).all()
    assert decoys["RelativeIntensity"].tolist() == [1.0, 0.5, 0.25, 0.1]
    assert decoys.attrs[SKIPPED] == 0


def test_decoys_identical_to_a_target_are_skipped() -> None:
    rows = []
    for peptide in ("PEPTIDEK", "EDITPEPK", "AAAAK", "LGEYGFQNALIVR"):
        rows.append({"ModifiedPeptide": peptide, "PrecursorCharge": 2, "FragmentType": "y"})
    table = pd.DataFrame(rows).assign(FragmentNumber=2, FragmentMz=300.0, RelativeIntensity=1.0)
    table["StrippedPeptide"] = table["ModifiedPeptide"]
    table["PrecursorId"] = table["ModifiedPeptide"] + "_2"
    decoys = pseudo_reverse_decoys(canonical(table))
    assert decoys["StrippedPeptide"].tolist() == ["VILANQFGYEGLR"]
    assert decoys.attrs[SKIPPED] == 3
    assert len(pseudo_reverse_decoys(table, exclude=["VILANQFGYEGLR"])) == 0


def test_clear_errors(tmp_path: Path) -> None:
    write_dia_library(library(), tmp_path / "good.tsv", "openswath")
    good = pd.read_csv(tmp_path / "good.tsv", sep="\t")
    good.drop(columns="ProductMz").to_csv(tmp_path / "nomz.tsv", sep="\t", index=False)
    with pytest.raises(
        DataFormatError, match=r"nomz\.tsv: record header: missing column ProductMz"
    ):
        read_library_tsv(tmp_path / "nomz.tsv")
    bad = good.astype({"PrecursorMz": object})
    bad.loc[2, "PrecursorMz"] = "abc"
    bad.to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(DataFormatError, match=r"record line 4: PrecursorMz 'abc' is not a number"):
        read_library_tsv(tmp_path / "bad.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataFormatError, match=r"empty\.tsv: record header: empty file"):
        read_dia_library(tmp_path / "empty.tsv")
    (tmp_path / "text.pqp").write_text("not sqlite at all, just text" * 10)
    with pytest.raises(DataFormatError, match="not an OpenSWATH PQP"):
        read_dia_library(tmp_path / "text.pqp")
    (tmp_path / "empty.pqp").write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty or missing PQP"):
        read_dia_library(tmp_path / "empty.pqp")
    with pytest.raises(ValueError, match="name a TSV layout"):
        write_dia_library(library(), tmp_path / "x.tsv")
    good.loc[1, "ModifiedPeptideSequence"] = "PEP(UniMod:99999)K"
    good.to_csv(tmp_path / "mod.tsv", sep="\t", index=False)
    with pytest.raises(DataFormatError, match=r"record line 3: ModifiedPeptideSequence"):
        read_library_tsv(tmp_path / "mod.tsv")


def test_osw_library_tables_old_schema(mirror: Path) -> None:
    """DIAlignR's OSW: the older schema (no ANNOTATION; ion in TRAML_ID ``..._y16_2``)."""
    table = read_dia_library(mirror / "dia" / "dialignr_spyogenes_merged.osw")
    precursors = table.drop_duplicates("PrecursorId")
    assert len(table) == 1932 and len(precursors) == 322  # SOURCE.md: 312 target, 10 decoy
    assert precursors["Decoy"].sum() == 10
    assert set(table["FragmentType"]) == {"a", "b", "y"} and set(table["FragmentCharge"]) == {
        1,
        2,
        3,
    }
    row = table[table["TransitionId"] == "59747_EIVDVGQMDPNFVHTPGIFVNYLVK/3_y16_2"].iloc[0]
    assert (row.FragmentType, row.FragmentNumber, row.FragmentCharge) == ("y", 16, 2)


# -- modifications kept only in PRECURSOR.TRAML_ID (old TPP mass tags) ----------------------------


def test_traml_mass_tags_by_hand() -> None:
    from deepms.io.pqp import precursor_peptide, traml_peptide

    assert traml_peptide("13478_AFDM[147]EER/2", "AFDMEER", False) == "AFDM[Oxidation]EER"
    # a decoy's TRAML_ID keeps its target's sequence: tokens pseudo-reversed, C-term kept
    assert traml_peptide("DECOY_3_LM[147]EEK/2", "EEMLK", True) == "EEM[Oxidation]LK"
    assert traml_peptide("9_C[143]IEVK/2", "CIEVK", False) == "C[Pyro-carbamidomethyl]IEVK"
    assert traml_peptide("5_PEPTIDEK/2", "PEPTIDEK", False) is None  # no tags
    assert traml_peptide("5_AFDM[147]EER/2", "AFDMEEK", False) is None  # residues differ
    assert traml_peptide("4_C[999]K/2", "CK", False) is None  # unknown tag
    assert traml_peptide(None, "CK", False) is None
    # precursor_peptide: a pairing TRAML_ID with an unknown tag cannot be written ('')
    assert precursor_peptide("4_C[999]K/2", "CK", "CK", False) == ""
    assert precursor_peptide("5_PEPTIDEK/2", "PEPTIDEK", "PEPM(UniMod:35)K", False) == (
        "PEPM[Oxidation]K"
    )


def test_pqp_plain_modified_sequence_takes_traml_modifications(tmp_path: Path) -> None:
    """MODIFIED_SEQUENCE plain, TRAML_ID tagged (as DIAlignR's OSW): the reader returns the
    modified peptide; an untagged precursor and an unknown tag keep MODIFIED_SEQUENCE."""
    path = tmp_path / "plain.pqp"
    write_dia_library(library(), path)
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE PEPTIDE SET MODIFIED_SEQUENCE = UNMODIFIED_SEQUENCE")
        renames = {
            "AC(UniMod:4)DEM(UniMod:35)R_3": "7_AC[160]DEM[147]R/3",
            "DECOY_AC(UniMod:4)DEM(UniMod:35)R_3": "DECOY_7_AC[160]DEM[147]R/3",
            "AC(UniMod:4)DEM(UniMod:35)R_2": "8_AC[999]DEMR/2",  # a tag no table names
        }
        for old, new in renames.items():
            db.execute("UPDATE PRECURSOR SET TRAML_ID = ? WHERE TRAML_ID = ?", (new, old))
        db.commit()
    table = read_dia_library(path)
    peptides = dict(table.drop_duplicates("PrecursorId")[["PrecursorId", "ModifiedPeptide"]].values)
    assert peptides["7_AC[160]DEM[147]R/3"] == "AC(UniMod:4)DEM(UniMod:35)R"
    assert peptides["DECOY_7_AC[160]DEM[147]R/3"] == "M(UniMod:35)EDC(UniMod:4)AR"
    assert peptides["8_AC[999]DEMR/2"] == "ACDEMR"
    assert peptides["(UniMod:1)PEPTIDEK_2"] == "PEPTIDEK"
    assert len(table) == len(library())
    modified = table[table["PrecursorId"] == "7_AC[160]DEM[147]R/3"]
    assert (modified["StrippedPeptide"] == "ACDEMR").all()
    # the recovered peptide explains the stored precursor m/z (written from the modified one)
    expected = parse_library_peptide("AC(UniMod:4)DEM(UniMod:35)R").precursor_mz(3)
    assert modified["PrecursorMz"].iloc[0] == pytest.approx(expected, abs=1e-6)


def test_osw_library_modifications_from_traml_ids(mirror: Path) -> None:
    """DIAlignR's OSW keeps mods only in TRAML_ID: 57 of its 322 precursors are modified, and
    every precursor's peptide then gives its stored m/z (within 0.01)."""
    table = read_dia_library(mirror / "dia" / "dialignr_spyogenes_merged.osw")
    precursors = table.drop_duplicates("PrecursorId")
    first = precursors[precursors["PrecursorId"] == "13478_AFDM[147]EER/2"].iloc[0]
    assert first.ModifiedPeptide == "AFDM(UniMod:35)EER" and first.StrippedPeptide == "AFDMEER"
    modified = precursors["ModifiedPeptide"].str.contains("(UniMod:", regex=False)
    assert modified.sum() == 57 and precursors.loc[modified, "Decoy"].sum() == 1
    mz = [
        parse_library_peptide(p).precursor_mz(z)
        for p, z in zip(precursors["ModifiedPeptide"], precursors["PrecursorCharge"], strict=True)
    ]
    assert np.abs(np.asarray(mz) - precursors["PrecursorMz"].to_numpy()).max() < 0.01
