"""LC-MS feature lists: featureXML (OpenMS) and Dinosaur-style TSV, written and read back.

Why these two: users feed feature lists to label-free quantification and ID transfer tools,
which read OpenMS featureXML (OpenMS, pyopenms, MSstats via OpenMS) or Dinosaur's TSV (Dinosaur,
DeepLC/IDTransfer pipelines, Biosaur2 writes the same columns). One in-memory form serves both:
a DataFrame with :data:`FEATURE_COLUMNS` (RT in seconds, ``mz`` the monoisotopic m/z) and an
optional ``hulls`` column (per feature a list of ``(n, 2)`` arrays of (RT, m/z) points, one per
isotope trace, as OpenMS's convex hulls).

featureXML mapping: ``position dim=0`` = RT apex, ``dim=1`` = monoisotopic m/z, ``intensity`` =
``intensity_sum``, ``overallquality`` = ``quality``; the RT span and the rest go into UserParams
(``rt_start``, ``rt_end``, ``intensity_apex``, ``n_isotopes``, ``n_scans``, ``FWHM`` (OpenMS's
name), ``most_abundant_mz``, ``averagine_corr``). Reading a file without those UserParams (e.g.
OpenMS's own output) takes the RT span from the hulls' bounding box and ``n_isotopes`` from the
number of hulls. OpenMS nests alternative-charge ``subordinate`` features inside a feature: they
are skipped unless ``subordinates=True`` (then flattened, with ``parent_id``).

Dinosaur TSV: Dinosaur writes RT in MINUTES; :func:`write_dinosaur_tsv` does too (``rt_unit``)
and :func:`read_dinosaur_tsv` converts back to seconds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from deepms.errors import DataFormatError
from deepms.io.atomic import atomic_path
from deepms.io.formats import register_format

PROTON = 1.007276466812

FEATURE_COLUMNS = (
    "feature_id",
    "mz",
    "charge",
    "rt_start",
    "rt_apex",
    "rt_end",
    "intensity_apex",
    "intensity_sum",
    "n_isotopes",
    "n_scans",
    "quality",
    "fwhm",
    "most_abundant_mz",
    "averagine_corr",
)
#: featureXML UserParam name -> (column, type) written and read back.
_USER_PARAMS = {
    "rt_start": ("rt_start", "float"),
    "rt_end": ("rt_end", "float"),
    "intensity_apex": ("intensity_apex", "float"),
    "n_isotopes": ("n_isotopes", "int"),
    "n_scans": ("n_scans", "int"),
    "FWHM": ("fwhm", "float"),
    "most_abundant_mz": ("most_abundant_mz", "float"),
    "averagine_corr": ("averagine_corr", "float"),
}
_DINOSAUR = {
    "mz": "mz",
    "mostAbundantMz": "most_abundant_mz",
    "charge": "charge",
    "rtStart": "rt_start",
    "rtApex": "rt_apex",
    "rtEnd": "rt_end",
    "fwhm": "fwhm",
    "nIsotopes": "n_isotopes",
    "nScans": "n_scans",
    "averagineCorr": "averagine_corr",
    "mass": None,
    "massCalib": None,
    "intensityApex": "intensity_apex",
    "intensitySum": "intensity_sum",
}
_RT_COLUMNS = ("rt_start", "rt_apex", "rt_end", "fwhm")


def normalise_features(features: pd.DataFrame) -> pd.DataFrame:
    """A copy with every :data:`FEATURE_COLUMNS` column (missing ones NaN, ids f_0, f_1, ...).

    Required: ``mz``, ``charge``, ``rt_apex``; a writer refuses a list without them rather than
    write features nobody can place.
    """
    missing = [c for c in ("mz", "charge", "rt_apex") if c not in features]
    if missing:
        raise ValueError(f"feature list lacks required columns {missing}")
    out = features.reset_index(drop=True).copy()
    for column in FEATURE_COLUMNS:
        if column not in out:
            out[column] = np.nan
    if out["feature_id"].isna().all():
        out["feature_id"] = [f"f_{i}" for i in range(len(out))]
    out["rt_start"] = out["rt_start"].fillna(out["rt_apex"])
    out["rt_end"] = out["rt_end"].fillna(out["rt_apex"])
    return out


def _fmt(value: object) -> str:
    return repr(float(value)) if isinstance(value, float | np.floating) else str(value)


def write_featurexml(features: pd.DataFrame, path: str | PathLike[str]) -> Path:
    """Write features as OpenMS featureXML (schema 1.9), atomically; readable by pyopenms."""
    frame = normalise_features(features)
    root = ET.Element(
        "featureMap",
        {
            "version": "1.9",
            "id": "fm_deepms",
            "xsi:noNamespaceSchemaLocation": "https://raw.githubusercontent.com/OpenMS/OpenMS/"
            "develop/share/OpenMS/SCHEMAS/FeatureXML_1_9.xsd",
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        },
    )
    processing = ET.SubElement(root, "dataProcessing", {"completion_time": "1970-01-01T00:00:00"})
    ET.SubElement(processing, "software", {"name": "deepms", "version": "0"})
    ET.SubElement(processing, "processingAction", {"name": "Quantitation"})
    listing = ET.SubElement(root, "featureList", {"count": str(len(frame))})
    has_hulls = "hulls" in frame
    for row in frame.itertuples(index=False):
        feature = ET.SubElement(listing, "feature", {"id": str(row.feature_id)})
        ET.SubElement(feature, "position", {"dim": "0"}).text = _fmt(float(row.rt_apex))
        ET.SubElement(feature, "position", {"dim": "1"}).text = _fmt(float(row.mz))
        intensity = 0.0 if pd.isna(row.intensity_sum) else float(row.intensity_sum)
        ET.SubElement(feature, "intensity").text = _fmt(intensity)
        for dim in ("0", "1"):
            ET.SubElement(feature, "quality", {"dim": dim}).text = "0"
        quality = 0.0 if pd.isna(row.quality) else float(row.quality)
        ET.SubElement(feature, "overallquality").text = _fmt(quality)
        ET.SubElement(feature, "charge").text = str(int(row.charge))
        hulls = row.hulls if has_hulls and isinstance(row.hulls, list | tuple) else None
        if not hulls:  # the RT span as a degenerate hull, so tools see the feature's extent
            hulls = [np.array([[row.rt_start, row.mz], [row.rt_end, row.mz]])]
        for nr, hull in enumerate(hulls):
            element = ET.SubElement(feature, "convexhull", {"nr": str(nr)})
            for rt, mz in np.asarray(hull, float).reshape(-1, 2):
                ET.SubElement(element, "pt", {"x": _fmt(rt), "y": _fmt(mz)})
        for name, (column, kind) in _USER_PARAMS.items():
            value = getattr(row, column)
            if pd.isna(value):
                continue
            text = str(int(value)) if kind == "int" else _fmt(float(value))
            ET.SubElement(feature, "UserParam", {"type": kind, "name": name, "value": text})
    ET.indent(root, space="\t")
    path = Path(path)
    with atomic_path(path) as partial:
        ET.ElementTree(root).write(partial, encoding="ISO-8859-1", xml_declaration=True)
    return path


def _parse_feature(element: ET.Element, path: Path, parent_id: str | None) -> dict[str, object]:
    feature_id = element.get("id", "?")
    try:
        positions = {p.get("dim"): float(p.text or "") for p in element.findall("position")}
        row: dict[str, object] = {
            "feature_id": feature_id,
            "rt_apex": positions["0"],
            "mz": positions["1"],
            "intensity_sum": float(element.findtext("intensity", "nan")),
            "quality": float(element.findtext("overallquality", "nan")),
            "charge": int(element.findtext("charge", "0")),
        }
    except (KeyError, ValueError) as exc:
        raise DataFormatError(path, f"feature {feature_id}", f"bad position/value: {exc}") from exc
    hulls = [
        np.array([[float(p.get("x", "nan")), float(p.get("y", "nan"))] for p in h.findall("pt")])
        for h in element.findall("convexhull")
    ]
    row["hulls"] = hulls
    params = {p.get("name"): p.get("value") for p in element.findall("UserParam")}
    params.update({p.get("name"): p.get("value") for p in element.findall("userParam")})
    for name, (column, kind) in _USER_PARAMS.items():
        if params.get(name) is not None:
            row[column] = int(float(params[name])) if kind == "int" else float(params[name])
    points = np.concatenate([h for h in hulls if len(h)]) if any(len(h) for h in hulls) else None
    if "rt_start" not in row and points is not None:
        row["rt_start"], row["rt_end"] = float(points[:, 0].min()), float(points[:, 0].max())
    row.setdefault("n_isotopes", len(hulls))
    if parent_id is not None:
        row["parent_id"] = parent_id
    return row


def read_featurexml(path: str | PathLike[str], subordinates: bool = False) -> pd.DataFrame:
    """Features of a featureXML (ours or OpenMS's) as a DataFrame with :data:`FEATURE_COLUMNS`.

    ``subordinates=True`` also returns OpenMS's nested alternative-charge features (with
    ``parent_id``; top-level rows have ``parent_id`` None).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataFormatError(path, "file", f"not well-formed XML: {exc}") from exc
    listing = root.find("featureList")
    if root.tag != "featureMap" or listing is None:
        raise DataFormatError(path, "file", f"not a featureXML (root <{root.tag}>, no featureList)")
    rows: list[dict[str, object]] = []
    for element in listing.findall("feature"):
        rows.append(_parse_feature(element, path, None))
        if subordinates:
            rows[-1]["parent_id"] = None
            for sub in element.findall("subordinate/feature"):
                rows.append(_parse_feature(sub, path, element.get("id", "?")))
    frame = pd.DataFrame(rows)
    for column in FEATURE_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    extra = [c for c in ("hulls", "parent_id") if c in frame]
    return frame[[*FEATURE_COLUMNS, *extra]]


def write_dinosaur_tsv(
    features: pd.DataFrame,
    path: str | PathLike[str],
    rt_unit: Literal["minute", "second"] = "minute",
    quality: bool = True,
) -> Path:
    """Write a Dinosaur-style feature TSV (its 14 columns, RT in minutes by default), atomically.

    ``quality`` appends deepms's per-feature score as a 15th column (Dinosaur has none; tools
    reading Dinosaur tables by column name ignore it).
    """
    frame = normalise_features(features)
    scale = 1 / 60 if rt_unit == "minute" else 1.0
    out = pd.DataFrame()
    for name, column in _DINOSAUR.items():
        if column is not None:
            out[name] = frame[column] * scale if column in _RT_COLUMNS else frame[column]
    neutral = (frame["mz"] - PROTON) * frame["charge"]
    out["mass"] = neutral
    out["massCalib"] = neutral  # no recalibration: calibrated mass = mass
    out = out[list(_DINOSAUR)]
    if quality:
        out["quality"] = frame["quality"]
    path = Path(path)
    with atomic_path(path) as partial:
        out.to_csv(partial, sep="\t", index=False, float_format="%.12g", na_rep="NaN")
    return path


def read_dinosaur_tsv(
    path: str | PathLike[str], rt_unit: Literal["minute", "second"] = "minute"
) -> pd.DataFrame:
    """Read a Dinosaur (or Biosaur2-style) TSV into :data:`FEATURE_COLUMNS`, RT in seconds."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in ("mz", "charge", "rtApex") if c not in table]
    if missing:
        raise DataFormatError(path, "header", f"not a Dinosaur feature table: lacks {missing}")
    scale = 60.0 if rt_unit == "minute" else 1.0
    frame = pd.DataFrame({"feature_id": [f"f_{i}" for i in range(len(table))]})
    for name, column in _DINOSAUR.items():
        if column is None:
            continue
        values = table.get(name, np.nan)
        frame[column] = values * scale if column in _RT_COLUMNS else values
    frame["quality"] = table.get("quality", np.nan)
    return normalise_features(frame)[list(FEATURE_COLUMNS)]


def feature_hulls_from_traces(traces: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Per-isotope (RT, m/z) point arrays -> their convex hulls (OpenMS's hull per trace)."""
    from scipy.spatial import ConvexHull, QhullError

    hulls = []
    for points in traces:
        points = np.asarray(points, float).reshape(-1, 2)
        try:
            hulls.append(points[ConvexHull(points).vertices])
        except (QhullError, ValueError):  # collinear or < 3 points: keep the extremes
            order = np.lexsort((points[:, 1], points[:, 0]))
            hulls.append(points[order[[0, -1]]] if len(points) > 1 else points)
    return hulls


@register_format("featurexml", (".featurexml",), "dict", "OpenMS featureXML feature lists")
def _read_featurexml_format(paths: Sequence[Path], on_error: str) -> Iterator[dict[str, object]]:
    """Format-registry reader: one dict per feature (FEATURE_COLUMNS plus hulls, source)."""
    for path in paths:
        for row in read_featurexml(path).to_dict("records"):
            yield {**row, "source": str(path)}


@register_format("dinosaur_tsv", (".tsv",), "dict", "Dinosaur-style feature TSV (RT in minutes)")
def _read_dinosaur_format(paths: Sequence[Path], on_error: str) -> Iterator[dict[str, object]]:
    """Format-registry reader: one dict per feature, RT in seconds."""
    for path in paths:
        for row in read_dinosaur_tsv(path).to_dict("records"):
            yield {**row, "source": str(path)}
