"""XIC readers: sqMass (zlib + MS-Numpress) and chromatogram mzML, mapping, and their errors."""

from __future__ import annotations

import base64
import math
import re
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
import pynumpress
import pytest

from deepms.errors import DataFormatError
from deepms.io.formats import get_format
from deepms.io.xic import (
    SQMASS_DECODERS,
    read_xics,
    transition_precursors,
    xics_by_precursor,
    xics_by_transition,
)

# MS-Numpress linear encoding of [100, 101, 102.5, 104] at fixed point 1000: an 8-byte
# big-endian fixed point, the first two values as little-endian int32 (100000, 101000), then
# half-byte residuals of the linear prediction (102500 - 102000 = 500, then 0)
LINEAR_BYTES = b"@\x8f@\x00\x00\x00\x00\x00\xa0\x86\x01\x00\x88\x8a\x01\x00T\xf1\x80"
# MS-Numpress short logged float of [0, 10, 1000] at fixed point 100: uint16 of log(x + 1) * 100
SLOF_BYTES = b"@Y\x00\x00\x00\x00\x00\x00\x00\x00\xf0\x00\xb3\x02"
# MS-Numpress positive integer of [0, 7, 300]
PIC_BYTES = b"\x87u\xc2\x10"


def test_numpress_known_bytes_decode_to_hand_known_values() -> None:
    assert struct.unpack(">d", LINEAR_BYTES[:8]) == (1000.0,)
    assert struct.unpack("<ii", LINEAR_BYTES[8:16]) == (100000, 101000)
    np.testing.assert_array_equal(SQMASS_DECODERS[2](LINEAR_BYTES), [100.0, 101.0, 102.5, 104.0])
    np.testing.assert_array_equal(
        SQMASS_DECODERS[5](zlib.compress(LINEAR_BYTES)), [100.0, 101.0, 102.5, 104.0]
    )
    slof = SQMASS_DECODERS[3](SLOF_BYTES)
    expected = [0.0, math.exp(240 / 100) - 1, math.exp(691 / 100) - 1]  # 0xf0 = 240, 0x2b3 = 691
    np.testing.assert_allclose(slof, expected, rtol=1e-12)
    np.testing.assert_allclose(SQMASS_DECODERS[6](zlib.compress(SLOF_BYTES)), expected)
    np.testing.assert_array_equal(SQMASS_DECODERS[4](PIC_BYTES), [0.0, 7.0, 300.0])
    np.testing.assert_array_equal(SQMASS_DECODERS[7](zlib.compress(PIC_BYTES)), [0, 7, 300])
    raw = np.array([1.5, -2.25])
    np.testing.assert_array_equal(SQMASS_DECODERS[0](raw.astype("<f8").tobytes()), raw)
    np.testing.assert_array_equal(SQMASS_DECODERS[1](zlib.compress(raw.tobytes())), raw)


def _encode(values: np.ndarray, code: int) -> bytes:
    values = np.asarray(values, dtype=float)
    inner = {
        0: lambda v: v.astype("<f8").tobytes(),
        2: lambda v: bytes(pynumpress.encode_linear(v, pynumpress.optimal_linear_fixed_point(v))),
        3: lambda v: bytes(pynumpress.encode_slof(v, pynumpress.optimal_slof_fixed_point(v))),
        4: lambda v: bytes(pynumpress.encode_pic(v)),
    }
    base = {0: 0, 1: 0, 2: 2, 3: 3, 4: 4, 5: 2, 6: 3, 7: 4}[code]
    blob = inner[base](values)
    return zlib.compress(blob) if code in (1, 5, 6, 7) else blob


def _sqmass(path: Path, chromatograms: list[dict]) -> Path:
    """An sqMass file with OpenMS's tables; each dict: id, native_id, rt, intensity, codes."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE RUN(ID INT, FILENAME TEXT, NATIVE_ID TEXT);
            CREATE TABLE CHROMATOGRAM(ID INT, RUN_ID INT, NATIVE_ID TEXT);
            CREATE TABLE PRECURSOR(SPECTRUM_ID INT, CHROMATOGRAM_ID INT, CHARGE INT,
              PEPTIDE_SEQUENCE TEXT, DRIFT_TIME REAL, ACTIVATION_METHOD INT,
              ACTIVATION_ENERGY REAL, ISOLATION_TARGET REAL, ISOLATION_LOWER REAL,
              ISOLATION_UPPER REAL);
            CREATE TABLE PRODUCT(SPECTRUM_ID INT, CHROMATOGRAM_ID INT, CHARGE INT,
              ISOLATION_TARGET REAL, ISOLATION_LOWER REAL, ISOLATION_UPPER REAL);
            CREATE TABLE DATA(SPECTRUM_ID INT, CHROMATOGRAM_ID INT, COMPRESSION INT,
              DATA_TYPE INT, DATA);
            INSERT INTO RUN VALUES (0, '/data/run_a.mzML', 'run_a');
            """
        )
        for c in chromatograms:
            conn.execute("INSERT INTO CHROMATOGRAM VALUES (?, 0, ?)", (c["id"], c["native_id"]))
            conn.execute(
                "INSERT INTO PRECURSOR VALUES (NULL, ?, 2, 'PEPTIDEK', -1, -1, 0, 500.25, 0, 0)",
                (c["id"],),
            )
            conn.execute(
                "INSERT INTO PRODUCT VALUES (NULL, ?, 0, ?, 0, 0)", (c["id"], c.get("product", 0))
            )
            rt_code, int_code = c.get("codes", (5, 6))
            for data_type, values, code in ((2, c["rt"], rt_code), (1, c["intensity"], int_code)):
                if values is not None:
                    conn.execute(
                        "INSERT INTO DATA VALUES (NULL, ?, ?, ?, ?)",
                        (c["id"], code, data_type, _encode(values, code)),
                    )
    return path


RT = np.array([600.0, 603.5, 607.0, 610.5, 614.0])
INTENSITY = np.array([0.0, 120.0, 5000.0, 130.0, 2.0])


def test_sqmass_every_compression_code_decodes(tmp_path: Path) -> None:
    chroms = [
        {"id": 0, "native_id": "7_Precursor_i0", "rt": RT, "intensity": INTENSITY},
        {"id": 1, "native_id": "101", "rt": RT, "intensity": INTENSITY, "product": 700.5},
    ]
    for code in range(8):
        chroms.append(
            {"id": 10 + code, "native_id": f"c{code}", "rt": RT, "intensity": INTENSITY,
             "codes": (5 if code in (4, 7) else code, code), "product": 300.0}  # pic: integers
        )  # fmt: skip
    xics = list(read_xics(_sqmass(tmp_path / "x.sqMass", chroms)))
    assert [x.native_id for x in xics][:2] == ["7_Precursor_i0", "101"]
    precursor, fragment = xics[0], xics[1]
    assert precursor.kind == "precursor" and precursor.precursor_ref == "7"
    assert math.isnan(precursor.product_mz) and precursor.precursor_mz == 500.25
    assert fragment.kind == "fragment" and fragment.product_mz == 700.5
    assert fragment.precursor_ref == "" and fragment.charge == 2
    assert fragment.peptide == "PEPTIDEK" and fragment.run == "run_a.mzML"
    for x in xics:
        np.testing.assert_allclose(x.rt, RT, rtol=1e-4)  # slof (codes 3, 6) is lossy
        np.testing.assert_allclose(x.intensity, INTENSITY, rtol=5e-3, atol=1e-9)
        assert x.rt.shape == x.intensity.shape == (5,)
    pic = next(x for x in xics if x.native_id == "c4")
    np.testing.assert_array_equal(pic.intensity, INTENSITY)  # integers survive pic exactly
    assert set(xics_by_transition(tmp_path / "x.sqMass")) == {x.native_id for x in xics}


def test_sqmass_errors_name_file_and_chromatogram(tmp_path: Path) -> None:
    good = {"id": 0, "native_id": "5", "rt": RT, "intensity": INTENSITY}
    short = _sqmass(tmp_path / "short.sqMass", [good | {"intensity": INTENSITY[:3]}])
    with pytest.raises(DataFormatError, match=r"short\.sqMass.*chromatogram 5.*5 retention.*3 int"):
        list(read_xics(short))
    unknown = _sqmass(tmp_path / "unknown.sqMass", [good])
    with sqlite3.connect(unknown) as conn:
        conn.execute("UPDATE DATA SET COMPRESSION = 9 WHERE DATA_TYPE = 1")
    with pytest.raises(
        DataFormatError, match=r"unknown\.sqMass.*chromatogram 5.*COMPRESSION code 9"
    ):
        list(read_xics(unknown))
    empty = _sqmass(tmp_path / "empty.sqMass", [])
    with pytest.raises(DataFormatError, match=r"empty\.sqMass.*no chromatograms"):
        list(read_xics(empty))
    no_int = _sqmass(tmp_path / "noint.sqMass", [good | {"intensity": None}])
    with pytest.raises(DataFormatError, match=r"noint\.sqMass.*chromatogram 5.*intensity array"):
        list(read_xics(no_int))
    corrupt = _sqmass(tmp_path / "corrupt.sqMass", [good])
    with sqlite3.connect(corrupt) as conn:
        conn.execute("UPDATE DATA SET DATA = X'00FF' WHERE DATA_TYPE = 2")
    with pytest.raises(DataFormatError, match=r"corrupt\.sqMass.*chromatogram 5.*cannot decode"):
        list(read_xics(corrupt))
    twice = _sqmass(tmp_path / "twice.sqMass", [good, good | {"id": 1}])
    with pytest.raises(DataFormatError, match=r"twice\.sqMass.*chromatogram 5.*repeated"):
        xics_by_transition(twice)


def _array(values: np.ndarray, name: str, accession: str, numpress: bool = False) -> str:
    if numpress:
        data = bytes(
            pynumpress.encode_linear(values, pynumpress.optimal_linear_fixed_point(values))
        )
        compression = 'accession="MS:1002312" name="MS-Numpress linear prediction compression"'
    else:
        data = np.asarray(values, dtype="<f8").tobytes()
        compression = 'accession="MS:1000576" name="no compression"'
    text = base64.b64encode(data).decode()
    return (
        f'<binaryDataArray encodedLength="{len(text)}">'
        '<cvParam cvRef="MS" accession="MS:1000523" name="64-bit float" value=""/>'
        f'<cvParam cvRef="MS" {compression} value=""/>'
        f'<cvParam cvRef="MS" accession="{accession}" name="{name}" value=""/>'
        f"<binary>{text}</binary></binaryDataArray>"
    )


def _mzml(path: Path, chromatograms: list[tuple[str, np.ndarray, np.ndarray, bool]]) -> Path:
    body = []
    for index, (native_id, rt, intensity, numpress) in enumerate(chromatograms):
        mz = 'cvRef="MS" accession="MS:1000827" name="isolation window target m/z"'
        body.append(
            f'<chromatogram id="{native_id}" index="{index}" defaultArrayLength="{len(rt)}">'
            f'<precursor><isolationWindow><cvParam {mz} value="500.25"/></isolationWindow>'
            '<selectedIonList count="1"><selectedIon>'
            '<cvParam cvRef="MS" accession="MS:1000744" name="selected ion m/z" value="500.25"/>'
            '<cvParam cvRef="MS" accession="MS:1000041" name="charge state" value="2"/>'
            "</selectedIon></selectedIonList></precursor>"
            f'<product><isolationWindow><cvParam {mz} value="700.5"/></isolationWindow></product>'
            '<binaryDataArrayList count="2">'
            + _array(rt, "time array", "MS:1000595", numpress)
            + _array(intensity, "intensity array", "MS:1000515")
            + "</binaryDataArrayList></chromatogram>"
        )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1.0"><run id="r">'
        f'<chromatogramList count="{len(body)}" defaultDataProcessingRef="dp">'
        + "".join(body)
        + "</chromatogramList></run></mzML>\n"
    )
    return path


def test_chromatogram_mzml_values_and_numpress(tmp_path: Path) -> None:
    path = _mzml(
        tmp_path / "a.chrom.mzML", [("101", RT, INTENSITY, False), ("102", RT, INTENSITY, True)]
    )
    xics = list(read_xics(path))
    assert [x.native_id for x in xics] == ["101", "102"]
    first = xics[0]
    np.testing.assert_array_equal(first.rt, RT)
    np.testing.assert_array_equal(first.intensity, INTENSITY)
    assert (first.precursor_mz, first.product_mz, first.charge) == (500.25, 700.5, 2)
    assert first.kind == "fragment" and first.run == "a.chrom.mzML"
    np.testing.assert_allclose(xics[1].rt, RT, atol=1e-4)
    assert get_format("xic").takes(path) and get_format("xic").takes("b.sqMass")
    assert len(list(get_format("xic").open([path]))) == 2


def test_chromatogram_mzml_errors(tmp_path: Path) -> None:
    bad = _mzml(tmp_path / "bad.chrom.mzML", [("101", RT, INTENSITY[:4], False)])
    with pytest.raises(DataFormatError, match=r"bad\.chrom\.mzML.*chromatogram 101.*5 retention"):
        list(read_xics(bad))
    assert list(get_format("xic").open([bad], on_error="skip")) == []
    empty = _mzml(tmp_path / "empty.chrom.mzML", [])
    with pytest.raises(DataFormatError, match=r"empty\.chrom\.mzML.*no chromatograms"):
        list(read_xics(empty))
    other = tmp_path / "x.txt"
    other.write_text("not a chromatogram file")
    with pytest.raises(DataFormatError, match=r"x\.txt.*not an \.sqMass"):
        list(read_xics(other))


def test_xics_by_precursor_maps_transitions_and_precursor_traces(tmp_path: Path) -> None:
    library = tmp_path / "lib.pqp"
    with sqlite3.connect(library) as conn:
        conn.executescript(
            """
            CREATE TABLE PRECURSOR(ID INT, TRAML_ID TEXT, DECOY INT);
            CREATE TABLE TRANSITION_PRECURSOR_MAPPING(TRANSITION_ID INT, PRECURSOR_ID INT);
            INSERT INTO PRECURSOR VALUES (7, '1_AAK/2', 0), (8, 'DECOY_1_AAK/2', 1);
            INSERT INTO TRANSITION_PRECURSOR_MAPPING VALUES (101, 7), (102, 7), (201, 8);
            """
        )
    chroms = [
        {"id": i, "native_id": n, "rt": RT, "intensity": INTENSITY, "product": 400.0}
        for i, n in enumerate(["101", "102", "201", "7_Precursor_i0", "1_AAK/2_Precursor_i1", "9"])
    ]
    xic = _sqmass(tmp_path / "x.sqMass", chroms)
    assert transition_precursors(library) == {"101": "7", "102": "7", "201": "8"}
    grouped = xics_by_precursor(xic, library)
    assert {k: [x.native_id for x in v] for k, v in grouped.items()} == {
        "7": ["101", "102", "7_Precursor_i0", "1_AAK/2_Precursor_i1"],
        "8": ["201"],
    }
    with pytest.raises(DataFormatError, match=r"x\.sqMass.*TRANSITION_PRECURSOR_MAPPING"):
        transition_precursors(xic)


# -- the real files (data mirror) ---------------------------------------------------------------


def _real(mirror: Path, name: str) -> Path:
    path = mirror / "dia" / name
    if not path.exists():
        pytest.skip(f"{path} not in the data mirror")
    return path


@pytest.mark.parametrize("run", [1, 2])
def test_real_sqmass_numpress_decodes(mirror: Path, run: int) -> None:
    path = _real(mirror, f"massdash_spyogenes_test_chrom_{run}.sqMass")
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        codes = dict(conn.execute("SELECT DATA_TYPE, COMPRESSION FROM DATA GROUP BY DATA_TYPE"))
    assert codes == {1: 6, 2: 5}  # intensity: slof + zlib, RT: linear + zlib
    xics = list(read_xics(path))
    assert len(xics) == 3609
    assert sum(x.kind == "precursor" for x in xics) == 8
    assert sum(x.kind == "fragment" for x in xics) == 3601
    for x in xics:
        assert len(x.rt) == len(x.intensity) > 0
        assert np.all(np.diff(x.rt) > 0) and np.all(x.intensity >= 0)
    assert min(x.rt[0] for x in xics) > 300 and max(x.rt[-1] for x in xics) < 10_000  # seconds


def test_real_chromatogram_mzml(mirror: Path) -> None:
    path = _real(mirror, "dialignr_K120808_Strep10pct_Repl1_R03.chrom.mzML")
    stored = [int(n) for n in re.findall(r'defaultArrayLength="(\d+)"', path.read_text())]
    xics = list(read_xics(path))
    assert len(xics) == 72 and [len(x.rt) for x in xics] == stored
    assert all(x.kind == "fragment" and np.all(np.diff(x.rt) > 0) for x in xics)
    grouped = xics_by_precursor(path, _real(mirror, "dialignr_spyogenes_merged.osw"))
    assert len(grouped) == 12 and {len(v) for v in grouped.values()} == {6}
    openms = list(read_xics(_real(mirror, "openms_Spyogenes.chrom.mzML")))  # zlib arrays
    assert len(openms) == 106 and sum(x.kind == "precursor" for x in openms) == 20
