"""Write imzML + ibd from pixel chunks (streamed), and generate synthetic images for scale tests.

Why not pyimzML's ``ImzMLWriter``: it keeps every spectrum's metadata and renders the whole XML
as one string at ``close()`` (gigabytes for a million pixels) and hashes each m/z array as a
tuple per pixel. Here spectra go to disk as they come: the header is written first with
fixed-width placeholders (count, grid, SHA-1) that are filled in at the end, so memory is one
chunk. The output is plain imzML 1.1 that pyimzML reads (checked in the tests).
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepms.io.imzml import PixelChunk
from deepms.io.msi_axis import MzAxis

_DTYPE_CV = {
    np.dtype(np.float32): ("MS:1000521", "32-bit float"),
    np.dtype(np.float64): ("MS:1000523", "64-bit float"),
}
_WIDTH = 12  # digits reserved for count and grid placeholders


def _cv(acc: str, name: str, value: str = "", unit: str = "") -> str:
    ref = acc.split(":")[0]
    units = {
        "mz": ' unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"',
        "counts": ' unitCvRef="MS" unitAccession="MS:1000131" unitName="number of detector counts"',
        "um": ' unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"',
    }
    attrs = f'cvRef="{ref}" accession="{acc}" name="{name}" value="{value}"'
    return f"<cvParam {attrs}{units.get(unit, '')}/>"


def _header(mode: str, file_id: str, mz: Any, it: Any, centroid: bool, pixel_size: Any) -> str:
    """The imzML header with fixed-width placeholders @SHA1@, @CNTS@, @MAXX@, @MAXY@."""
    mode_acc = "IMS:1000030" if mode == "continuous" else "IMS:1000031"
    spectrum = (
        ("MS:1000127", "centroid spectrum") if centroid else ("MS:1000128", "profile spectrum")
    )
    pad = "x" * (_WIDTH - 6)
    size = "".join(
        _cv(a, n, str(v), "um")
        for a, n, v in zip(("IMS:1000046", "IMS:1000047"), ("pixel size (x)", "pixel size y"),
                           pixel_size or (), strict=False)
    )  # fmt: skip
    array = _cv("IMS:1000101", "external data", "true") + _cv("MS:1000576", "no compression")
    cvs = (
        '<cv id="MS" fullName="PSI-MS" URI="http://purl.obolibrary.org/obo/ms.obo"/>'
        '<cv id="UO" fullName="Unit Ontology" URI="http://purl.obolibrary.org/obo/uo.obo"/>'
        '<cv id="IMS" fullName="Imaging MS Ontology" '
        'URI="http://www.maldi-msi.org/download/imzml/imagingMS.obo"/>'
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="ISO-8859-1"?>',
            '<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1">',
            f'<cvList count="3">{cvs}</cvList>',
            "<fileDescription><fileContent>",
            _cv("MS:1000579", "MS1 spectrum") + _cv(mode_acc, mode),
            _cv("IMS:1000080", "universally unique identifier", "{" + file_id + "}"),
            _cv("IMS:1000091", "ibd SHA-1", "@SHA1@" + "x" * 34),
            "</fileContent></fileDescription>",
            '<referenceableParamGroupList count="3">',
            '<referenceableParamGroup id="mzArray">' + _cv("MS:1000514", "m/z array", unit="mz"),
            _cv(*_DTYPE_CV[mz]) + array + "</referenceableParamGroup>",
            '<referenceableParamGroup id="intensityArray">',
            _cv("MS:1000515", "intensity array", unit="counts"),
            _cv(*_DTYPE_CV[it]) + array + "</referenceableParamGroup>",
            '<referenceableParamGroup id="spectrum">' + _cv("MS:1000579", "MS1 spectrum"),
            _cv("MS:1000511", "ms level", "1") + _cv(*spectrum) + "</referenceableParamGroup>",
            "</referenceableParamGroupList>",
            '<softwareList count="1"><software id="deepms" version="0">',
            _cv("MS:1000799", "custom unreleased software tool", "deepms"),
            "</software></softwareList>",
            '<scanSettingsList count="1"><scanSettings id="scanSettings0">',
            _cv("IMS:1000042", "max count of pixels x", "@MAXX@" + pad),
            _cv("IMS:1000043", "max count of pixels y", "@MAXY@" + pad) + size,
            "</scanSettings></scanSettingsList>",
            '<instrumentConfigurationList count="1"><instrumentConfiguration id="IC0"/>',
            "</instrumentConfigurationList>",
            '<dataProcessingList count="1"><dataProcessing id="deepms_export">',
            '<processingMethod order="0" softwareRef="deepms">',
            _cv("MS:1000530", "file format conversion", "Output to imzML"),
            "</processingMethod></dataProcessing></dataProcessingList>",
            '<run defaultInstrumentConfigurationRef="IC0" id="run0">',
            f'<spectrumList count="@CNTS@{pad}" defaultDataProcessingRef="deepms_export">\n',
        ]
    )


_ARRAY = (
    '<binaryDataArray encodedLength="0"><referenceableParamGroupRef ref="{ref}"/>'
    '<cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{n}"/>'
    '<cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="{nb}"/>'
    '<cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{off}"/>'
    "<binary/></binaryDataArray>"
)
_SPECTRUM = (
    '      <spectrum id="spectrum={i}" defaultArrayLength="0" index="{i}">'
    '<referenceableParamGroupRef ref="spectrum"/><scanList count="1">'
    '<cvParam cvRef="MS" accession="MS:1000795" name="no combination" value=""/><scan>'
    '<cvParam cvRef="IMS" accession="IMS:1000050" name="position x" value="{x}"/>'
    '<cvParam cvRef="IMS" accession="IMS:1000051" name="position y" value="{y}"/>'
    '</scan></scanList><binaryDataArrayList count="2">{mz}{it}</binaryDataArrayList></spectrum>\n'
)
_FOOTER = "    </spectrumList>\n  </run>\n</mzML>\n"


def write_imzml(
    path: str | Path,
    chunks: Iterable[PixelChunk],
    axis: MzAxis,
    mode: Literal["continuous", "processed"] = "continuous",
    pixel_size: tuple[float, float] | None = None,
    centroid: bool = True,
    mz_dtype: Any = np.float64,
    intensity_dtype: Any = np.float32,
) -> Path:
    """Write ``chunks`` (intensities on ``axis``) as ``path`` (.imzML) + ``.ibd``; returns path.

    ``continuous`` stores the axis once; ``processed`` stores it per pixel (files for testing
    processed-mode readers). The ibd SHA-1 is declared, as the spec recommends.
    """
    path = Path(path)
    ibd_path = path.with_suffix(".ibd")
    mz_dtype, it_dtype = np.dtype(mz_dtype), np.dtype(intensity_dtype)
    file_id = uuidlib.uuid4()
    header = _header(mode, str(file_id).upper(), mz_dtype, it_dtype, centroid, pixel_size)
    header_bytes = header.encode("ascii")
    mz = axis.centres.astype(mz_dtype)
    mz_bytes = mz.tobytes()
    n_bins, count, max_x, max_y = axis.n_bins, 0, 0, 0
    sha1 = hashlib.sha1()
    with path.open("wb") as xml, ibd_path.open("wb") as ibd:
        xml.write(header_bytes)
        offset = _write(ibd, sha1, file_id.bytes)
        if mode == "continuous":
            mz_off, offset = offset, offset + _write(ibd, sha1, mz_bytes)
        for chunk in chunks:
            rows = np.ascontiguousarray(chunk.intensities, dtype=it_dtype)
            if rows.shape[1] != n_bins:
                raise ValueError(f"chunk has {rows.shape[1]} bins, the axis {n_bins}")
            parts = []
            for i in range(len(chunk)):
                if mode == "processed":
                    mz_off, offset = offset, offset + _write(ibd, sha1, mz_bytes)
                it_bytes = rows[i].tobytes()
                it_off, offset = offset, offset + _write(ibd, sha1, it_bytes)
                x, y = int(chunk.x[i]), int(chunk.y[i])
                max_x, max_y = max(max_x, x), max(max_y, y)
                mz_xml = _ARRAY.format(ref="mzArray", n=n_bins, nb=len(mz_bytes), off=mz_off)
                it_xml = _ARRAY.format(ref="intensityArray", n=n_bins, nb=len(it_bytes), off=it_off)
                parts.append(_SPECTRUM.format(i=count, x=x, y=y, mz=mz_xml, it=it_xml))
                count += 1
            xml.write("".join(parts).encode("ascii"))
        xml.write(_FOOTER.encode("ascii"))
        for token, value in ((b"@SHA1@", sha1.hexdigest().upper()), (b"@CNTS@", count),
                             (b"@MAXX@", max_x), (b"@MAXY@", max_y)):  # fmt: skip
            at = header_bytes.index(token)
            width = 40 if token == b"@SHA1@" else _WIDTH
            xml.seek(at)
            xml.write(str(value).rjust(width, "0").encode("ascii"))
    return path


def _write(f: Any, digest: Any, data: bytes) -> int:
    f.write(data)
    digest.update(data)
    return len(data)


def synthetic_chunks(
    n_pixels: int, n_bins: int, seed: int = 0, n_regions: int = 4, chunk_size: int = 8192
) -> tuple[MzAxis, tuple[int, int], Iterator[PixelChunk]]:
    """A spatially structured synthetic image, generated chunk by chunk (bounded memory).

    The grid is about square; each pixel belongs to the nearest of ``n_regions`` random seeds
    (Voronoi regions), and each region has its own peak pattern, plus multiplicative and
    additive noise. The region of pixel (x, y) is ``synthetic_region(x, y, ...)`` with the same
    seed, so the labels can be recomputed without storing them.
    """
    width = int(np.ceil(np.sqrt(n_pixels)))
    height = int(np.ceil(n_pixels / width))
    axis = MzAxis.from_continuous(np.linspace(600.0, 1800.0, n_bins))
    rng = np.random.default_rng(seed)
    centres = rng.uniform([1, 1], [width, height], size=(n_regions, 2))
    base = rng.gamma(0.3, 1.0, size=(n_regions, n_bins)).astype(np.float32)

    def gen() -> Iterator[PixelChunk]:
        noise = np.random.default_rng(seed + 1)
        for start in range(0, n_pixels, chunk_size):
            index = np.arange(start, min(start + chunk_size, n_pixels))
            x, y = index % width + 1, index // width + 1
            region = synthetic_region(x, y, centres)
            scale = noise.lognormal(0.0, 0.3, size=(len(index), 1)).astype(np.float32)
            rows = base[region] * scale
            rows += noise.exponential(0.05, size=rows.shape).astype(np.float32)
            yield PixelChunk(x, y, index, rows)

    return axis, (width, height), gen()


def synthetic_region(x: np.ndarray, y: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest region seed for each pixel (the synthetic image's labels)."""
    d = (x[:, None] - centres[None, :, 0]) ** 2 + (y[:, None] - centres[None, :, 1]) ** 2
    return np.argmin(d, axis=1)


def generate_imzml(
    path: str | Path, n_pixels: int, n_bins: int, seed: int = 0, **options: Any
) -> Path:
    """A synthetic continuous imzML of ``n_pixels`` (about square grid) for scale studies."""
    axis, _, chunks = synthetic_chunks(n_pixels, n_bins, seed)
    return write_imzml(path, chunks, axis, pixel_size=(10.0, 10.0), **options)
