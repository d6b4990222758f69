"""Feature lists: featureXML and Dinosaur TSV round trips (ours and pyopenms), OpenMS references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.errors import DataFormatError
from deepms.io.features import (
    FEATURE_COLUMNS,
    feature_hulls_from_traces,
    read_dinosaur_tsv,
    read_featurexml,
    write_dinosaur_tsv,
    write_featurexml,
)

DINOSAUR_HEADER = [
    "mz",
    "mostAbundantMz",
    "charge",
    "rtStart",
    "rtApex",
    "rtEnd",
    "fwhm",
    "nIsotopes",
    "nScans",
    "averagineCorr",
    "mass",
    "massCalib",
    "intensityApex",
    "intensitySum",
]


def _features() -> pd.DataFrame:
    hull = [np.array([[100.0, 500.25], [130.0, 500.25], [130.0, 500.26], [100.0, 500.26]])]
    return pd.DataFrame(
        {
            "feature_id": ["f_1", "f_2"],
            "mz": [500.2512345678, 812.4123456789],
            "charge": [2, 3],
            "rt_start": [100.0, 400.5],
            "rt_apex": [115.25, 410.75],
            "rt_end": [130.0, 425.0],
            "intensity_apex": [1.5e5, 2.0e4],
            "intensity_sum": [3.25e6, 4.0e5],
            "n_isotopes": [4, 3],
            "n_scans": [31, 25],
            "quality": [0.93, 0.41],
            "fwhm": [8.5, 6.0],
            "most_abundant_mz": [500.7527, 812.7467],
            "averagine_corr": [0.98, 0.77],
            "hulls": [hull * 2, None],
        }
    )


def _assert_same(read: pd.DataFrame, written: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        np.testing.assert_allclose(read[column].to_numpy(float), written[column].to_numpy(float))


def test_featurexml_round_trip_with_our_reader(tmp_path: Path) -> None:
    features = _features()
    back = read_featurexml(write_featurexml(features, tmp_path / "f.featureXML"))
    assert list(back["feature_id"]) == ["f_1", "f_2"]
    numeric = [c for c in FEATURE_COLUMNS if c != "feature_id"]
    _assert_same(back, features, numeric)
    assert len(back["hulls"][0]) == 2 and back["hulls"][0][0].shape == (4, 2)
    np.testing.assert_allclose(
        back["hulls"][1][0], [[400.5, 812.4123456789], [425.0, 812.4123456789]]
    )


def test_featurexml_round_trip_through_pyopenms(tmp_path: Path) -> None:
    oms = pytest.importorskip("pyopenms")
    features = _features()
    fmap = oms.FeatureMap()
    oms.FeatureXMLFile().load(str(write_featurexml(features, tmp_path / "f.featureXML")), fmap)
    assert fmap.size() == 2
    first = fmap[0]
    assert first.getRT() == pytest.approx(115.25) and first.getMZ() == pytest.approx(500.2512345678)
    assert first.getCharge() == 2 and first.getIntensity() == pytest.approx(3.25e6, rel=1e-6)
    assert first.getOverallQuality() == pytest.approx(0.93, rel=1e-6)
    assert first.getMetaValue("rt_start") == pytest.approx(100.0)
    assert first.getMetaValue("n_isotopes") == 4 and len(first.getConvexHulls()) == 2
    # and back: pyopenms writes, we read
    oms.FeatureXMLFile().store(str(tmp_path / "o.featureXML"), fmap)
    again = read_featurexml(tmp_path / "o.featureXML")
    _assert_same(again, features, ["mz", "charge", "rt_apex", "rt_start", "rt_end", "quality"])
    _assert_same(again, features, ["intensity_sum", "n_isotopes", "fwhm"])


def test_dinosaur_tsv_round_trip(tmp_path: Path) -> None:
    features = _features()
    path = write_dinosaur_tsv(features, tmp_path / "f.tsv")
    table = pd.read_csv(path, sep="\t")
    assert list(table.columns) == [*DINOSAUR_HEADER, "quality"]
    assert table["rtApex"][0] == pytest.approx(115.25 / 60)  # Dinosaur's unit: minutes
    assert table["mass"][1] == pytest.approx((812.4123456789 - 1.007276466812) * 3)
    back = read_dinosaur_tsv(path)
    numeric = [c for c in FEATURE_COLUMNS if c != "feature_id"]
    for column in numeric:
        np.testing.assert_allclose(back[column], features[column], rtol=1e-9, err_msg=column)


def test_writers_refuse_features_without_position(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rt_apex"):
        write_featurexml(pd.DataFrame({"mz": [500.0], "charge": [2]}), tmp_path / "x.featureXML")


def test_readers_name_the_file_on_bad_input(tmp_path: Path) -> None:
    (tmp_path / "bad.featureXML").write_text("<featureMap><featureList><feature")
    with pytest.raises(DataFormatError, match=r"bad\.featureXML"):
        read_featurexml(tmp_path / "bad.featureXML")
    (tmp_path / "other.featureXML").write_text("<consensusXML/>")
    with pytest.raises(DataFormatError, match="not a featureXML"):
        read_featurexml(tmp_path / "other.featureXML")
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(DataFormatError, match="Dinosaur"):
        read_dinosaur_tsv(tmp_path / "bad.tsv")


def test_hulls_from_traces() -> None:
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], float)
    line = np.array([[0, 5.0], [1, 5.0], [2, 5.0]])
    hulls = feature_hulls_from_traces([square, line])
    assert len(hulls[0]) == 4 and hulls[1].tolist() == [[0, 5.0], [2, 5.0]]


@pytest.mark.parametrize(
    ("name", "top", "total"),
    [
        ("openms_LCMS-centroided.featureXML", 17, 37),
        ("openms_FeatureFinderCentroided_1_1_output.featureXML", 8, 8),
        ("openms_FeatureFinderMultiplex_5_output.featureXML", 2, 2),
    ],
)
def test_openms_reference_feature_files(mirror: Path, name: str, top: int, total: int) -> None:
    """The LCMS-centroided reference holds 37 <feature> elements: 17 features, 20 nested
    alternative-charge subordinates (as pyopenms counts them)."""
    path = mirror / "deepiso" / name
    features = read_featurexml(path)
    everything = read_featurexml(path, subordinates=True)
    assert len(features) == top and len(everything) == total
    assert (features["charge"] > 0).all() and (features["rt_start"] <= features["rt_apex"]).all()
    assert (features["rt_apex"] <= features["rt_end"]).all()
    oms = pytest.importorskip("pyopenms")
    fmap = oms.FeatureMap()
    oms.FeatureXMLFile().load(str(path), fmap)
    assert fmap.size() == top
    assert sum(len(f.getSubordinates()) for f in fmap) == total - top
    np.testing.assert_allclose(features["mz"], [f.getMZ() for f in fmap])
    np.testing.assert_allclose(features["rt_apex"], [f.getRT() for f in fmap])


def test_registered_as_formats(tmp_path: Path) -> None:
    from deepms.io.formats import get_format

    xml = write_featurexml(_features(), tmp_path / "f.featureXML")
    tsv = write_dinosaur_tsv(_features(), tmp_path / "f.tsv")
    assert [r["charge"] for r in get_format("featurexml").open([xml])] == [2, 3]
    assert [r["charge"] for r in get_format("dinosaur_tsv").open([tsv])] == [2, 3]
