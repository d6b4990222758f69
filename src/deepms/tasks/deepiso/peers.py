"""Peers of the deepiso feature detector, run on the same maps in the same run (issue 16, Build 5).

- ``openms_centroided``: OpenMS FeatureFinderCentroided, i.e. ``FeatureFinderAlgorithmPicked``
  (pyopenms 3.6, main environment; OpenMS 3 dropped the generic ``FeatureFinder``) with its
  default parameters, fed as the TOPP tool feeds it: MS1 only, zero intensities dropped,
  spectra and peaks sorted (the in1/in2 runs store peaks out of m/z order), profile data refused.
- ``openms_centroided_test``: the same with :data:`OPENMS_TEST_PARAMS`, OpenMS's regression-test
  parameters for that tool (charge 2 only, 14 spectra per trace, 0.02 m/z tolerance, 1 bin).
- ``biosaur2``: Biosaur2 0.3.4 from PyPI, its CLI with its defaults and ``-nprocs 1``, in its
  own environment ``.venv-peers/biosaur2`` (it pins numpy 1.26.4 and pandas 2.3.3; the main
  environment has numpy 2 and pandas 3). Build it with ``make peers PEER_ENVS=biosaur2`` or
  ``bash envs/setup.sh biosaur2``; pins in ``envs/biosaur2/requirements.txt``.

Why every peer runs in a subprocess, OpenMS included: a timeout can stop it, a crash in C++ does
not take the caller down, and ``OMP_NUM_THREADS=1`` (read by OpenMS's OpenMP runtime when the
library loads) makes every peer single-threaded, so wall times compare on one core.

Output: :data:`deepms.io.features.FEATURE_COLUMNS`, RT in seconds, ``mz`` monoisotopic. OpenMS
reports the monoisotopic m/z as the feature's m/z (``reported_mz = monoisotopic``), its intensity
(the fitted model's area) as ``intensity_sum``, ``overallquality`` as ``quality``, the RT span
from the union of its trace hulls; ``intensity_apex``, ``n_scans`` and ``most_abundant_mz`` are
read off the map inside those hulls (OpenMS stores none of them). Biosaur2 writes RT in the
mzML's own unit (it reads ``scan start time`` raw), converted here; it has no quality score.
"""

from __future__ import annotations

import gzip
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.io.features import FEATURE_COLUMNS
from deepms.peer_envs import (
    PeerError,
    PeerUnavailableError,
    env_bin,
    failure,
    peer_environment,
    run_logged,
)

PEERS = ("openms_centroided", "openms_centroided_test", "biosaur2")
#: peers that need an environment of their own (envs/<env>/requirements.txt, .venv-peers/<env>)
PEER_ENVS = {"biosaur2": "biosaur2"}
DEFAULT_TIMEOUT_S = 1800.0
#: FeatureFinderCentroided's regression-test parameters: the values that differ from the
#: defaults in OpenMS/OpenMS src/tests/topp/FeatureFinderCentroided_1_parameters.ini
#: (snapshot 2f566776511606d2c2d579adf02d50f31adc05da, the one the data's SOURCE.md cites)
OPENMS_TEST_PARAMS: dict[str, Any] = {
    "intensity:bins": 1,
    "mass_trace:mz_tolerance": 0.02,
    "mass_trace:min_spectra": 14,
    "isotopic_pattern:charge_low": 2,
    "isotopic_pattern:charge_high": 2,
    "isotopic_pattern:mz_tolerance": 0.02,
    "isotopic_pattern:mass_window_width": 100.0,
}
#: Biosaur2 output column -> FEATURE_COLUMNS (RT columns times the file's seconds per unit)
_BIOSAUR2 = {
    "mz": "mz",
    "charge": "charge",
    "rtStart": "rt_start",
    "rtApex": "rt_apex",
    "rtEnd": "rt_end",
    "intensityApex": "intensity_apex",
    "intensitySum": "intensity_sum",
    "nIsotopes": "n_isotopes",
    "nScans": "n_scans",
}


@dataclass
class PeerRun:
    """One peer's features on one map, with how they were obtained."""

    name: str
    features: pd.DataFrame  # FEATURE_COLUMNS
    wall_s: float  # the peer's subprocess, start to exit (includes reading the mzML)
    command: list[str]
    output: Path  # the peer's own output file (featureXML or Biosaur2 TSV)
    hulls: list[list[np.ndarray]] | None = None  # OpenMS: per feature its (RT, m/z) trace hulls
    notes: dict[str, Any] = field(default_factory=dict)


def peer_python(env: str) -> Path:
    """The python of a peer environment; says how to build it when it is missing or half-built."""
    return env_bin(env, "python")


def _run(name: str, command: list[str], workdir: Path, timeout: float) -> float:
    """Run a peer command (output to ``<workdir>/<name>.log``); its wall time, or PeerError."""
    log_path = workdir / f"{name}.log"
    env = peer_environment(isolated=name in PEER_ENVS)
    rc, wall = run_logged(name, command, workdir, log_path, env, timeout)
    if rc != 0:
        raise failure(name, command, rc, log_path)
    return wall


def _plain_mzml(mzml_path: Path, workdir: Path) -> Path:
    """The map as a plain mzML: a ``.gz`` is decompressed into ``workdir`` (once per workdir),
    because neither pyopenms' MzMLFile nor Biosaur2 reads gzip."""
    if not mzml_path.is_file():
        raise FileNotFoundError(f"no such mzML: {mzml_path}")
    if mzml_path.suffix.lower() != ".gz":
        return mzml_path
    plain = workdir / mzml_path.with_suffix("").name
    if not plain.exists() or plain.stat().st_mtime < mzml_path.stat().st_mtime:
        partial = plain.with_suffix(".partial")
        with gzip.open(mzml_path, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        partial.replace(plain)
    return plain


def _seconds_per_unit(mzml_path: Path) -> float:
    """Seconds per unit of the file's MS1 ``scan start time`` (60 for minutes, mzML's default)."""
    from pyteomics import mzml

    with mzml.MzML(str(mzml_path)) as reader:
        for spectrum in reader:
            if int(spectrum.get("ms level", 1)) != 1:
                continue
            value = spectrum["scanList"]["scan"][0].get("scan start time")
            if value is None:
                break
            unit = getattr(value, "unit_info", None) or "minute"
            return 60.0 if str(unit).startswith("min") else 1.0
    raise PeerError(f"{mzml_path}: no MS1 spectrum with a scan start time")


def openms_parameters(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """FeatureFinderAlgorithmPicked overrides of an OpenMS peer (test values, then ``params``)."""
    base = dict(OPENMS_TEST_PARAMS) if name == "openms_centroided_test" else {}
    return {**base, **(params or {})}


def biosaur2_arguments(params: dict[str, Any] | None = None) -> list[str]:
    """Biosaur2 CLI options from ``{"minlh": 3, "tof": True}``; ``-nprocs 1`` unless given."""
    options = {"nprocs": 1, **(params or {})}
    args: list[str] = []
    for key, value in options.items():
        if value is True:
            args.append(f"-{key}")
        elif value is not False and value is not None:
            args += [f"-{key}", str(value)]
    return args


def run_peer_detailed(
    name: str,
    mzml_path: str | PathLike[str],
    workdir: str | PathLike[str],
    params: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> PeerRun:
    """Run peer ``name`` on an mzML map (gz allowed); its features, wall time and command.

    ``params`` override the peer's settings: FeatureFinderAlgorithmPicked parameter names
    (``"mass_trace:min_spectra"``) for the OpenMS peers, CLI options without the dash
    (``"minlh"``) for Biosaur2.
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "biosaur2":
        script = peer_python("biosaur2").parent / "biosaur2"
        plain = _plain_mzml(Path(mzml_path), workdir)
        output = workdir / f"{name}.features.tsv"
        output.unlink(missing_ok=True)  # Biosaur2 appends to an existing file
        command = [str(script), str(plain.resolve()), "-o", str(output.resolve())]
        command += biosaur2_arguments(params)
        wall = _run(name, command, workdir, timeout)
        if not output.is_file():
            raise PeerError(f"peer {name!r} wrote no {output}: {shlex.join(command)}")
        features = read_biosaur2(output, _seconds_per_unit(plain), prefix=name)
        return PeerRun(name, features, wall, command, output)
    plain = _plain_mzml(Path(mzml_path), workdir)
    param_file = workdir / f"{name}.params.json"
    param_file.write_text(json.dumps(openms_parameters(name, params)))
    output = workdir / f"{name}.featureXML"
    table = workdir / f"{name}.features.tsv"
    command = [sys.executable, "-m", __name__, str(plain.resolve()), str(param_file.resolve())]
    command.append(str(output.resolve()))
    wall = _run(name, command, workdir, timeout)
    frame = pd.read_csv(table, sep="\t")
    notes = json.loads(output.with_suffix(".json").read_text())
    from deepms.io.features import read_featurexml

    hulls = list(read_featurexml(output)["hulls"]) if len(frame) else []
    frame["feature_id"] = [f"{name}_{i}" for i in range(len(frame))]
    return PeerRun(name, frame[list(FEATURE_COLUMNS)], wall, command, output, hulls, notes)


def run_peer(
    name: str,
    mzml_path: str | PathLike[str],
    workdir: str | PathLike[str],
    params: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Peer ``name``'s features on an mzML map in the :data:`FEATURE_COLUMNS` layout."""
    return run_peer_detailed(name, mzml_path, workdir, params, timeout).features


def read_biosaur2(
    path: str | PathLike[str], seconds_per_unit: float = 1.0, prefix: str = "biosaur2"
) -> pd.DataFrame:
    """A Biosaur2 features TSV in :data:`FEATURE_COLUMNS` (its RT times ``seconds_per_unit``)."""
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in ("mz", "charge", "rtApex", "rtStart", "rtEnd") if c not in table]
    if missing:
        raise PeerError(f"{path}: not a Biosaur2 feature table, lacks {missing}")
    frame = pd.DataFrame({"feature_id": [f"{prefix}_{i}" for i in range(len(table))]})
    for source, column in _BIOSAUR2.items():
        values = table.get(source, np.nan)
        frame[column] = values * seconds_per_unit if column.startswith("rt_") else values
    for column in FEATURE_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    frame["charge"] = frame["charge"].astype(int)
    return frame[list(FEATURE_COLUMNS)]


# --- the OpenMS child process --------------------------------------------------------------------


def _load_ms1(path: str) -> Any:
    """MS1 spectra as FeatureFinderCentroided loads them: no zero intensities, sorted."""
    import pyopenms as oms

    options = oms.PeakFileOptions()
    options.setMSLevels([1])
    reader = oms.MzMLFile()
    reader.setOptions(options)
    exp = oms.MSExperiment()
    reader.load(path, exp)
    spectra = []
    for spectrum in exp.getSpectra():
        mz, intensity = spectrum.get_peaks()
        keep = intensity > 0
        if not keep.all():
            spectrum.set_peaks((mz[keep], intensity[keep]))
        spectra.append(spectrum)
    exp.setSpectra(spectra)
    exp.sortSpectra(True)
    exp.updateRanges()
    if exp.getNrSpectra() == 0:
        raise SystemExit(f"{path}: no MS1 spectra")
    if exp[0].getType() == oms.SpectrumSettings.SpectrumType.PROFILE:
        raise SystemExit(f"{path}: profile spectra; FeatureFinderCentroided expects centroided")
    return exp


def _map_features(exp: Any, features: Any) -> pd.DataFrame:
    """FeatureMap -> FEATURE_COLUMNS; apex intensity, scans and most abundant trace from the map."""
    rts = np.array([s.getRT() for s in exp.getSpectra()])
    peaks = [s.get_peaks() for s in exp.getSpectra()]
    rows = []
    for feature in features:
        boxes = [h.getBoundingBox() for h in feature.getConvexHulls()]
        lo = [b.minPosition() for b in boxes] or [[feature.getRT(), feature.getMZ()]]
        hi = [b.maxPosition() for b in boxes] or [[feature.getRT(), feature.getMZ()]]
        rt_start, rt_end = min(p[0] for p in lo), max(p[0] for p in hi)
        apex, scans, sums, centres = 0.0, 0, [], []
        for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
            total = weighted = 0.0
            first, last = np.searchsorted(rts, a[0], "left"), np.searchsorted(rts, b[0], "right")
            for i in range(first, last):
                mz, intensity = peaks[i]
                j0, j1 = np.searchsorted(mz, a[1], "left"), np.searchsorted(mz, b[1], "right")
                if j1 > j0:
                    total += float(intensity[j0:j1].sum())
                    weighted += float((mz[j0:j1] * intensity[j0:j1]).sum())
                    if k == 0:
                        apex, scans = max(apex, float(intensity[j0:j1].max())), scans + 1
            sums.append(total)
            centres.append(weighted / total if total > 0 else np.nan)
        fwhm = feature.getMetaValue("FWHM") if feature.metaValueExists("FWHM") else np.nan
        most_abundant = centres[int(np.argmax(sums))] if sums else np.nan
        head = (f"f_{len(rows)}", feature.getMZ(), feature.getCharge(), rt_start, feature.getRT())
        tail = (rt_end, apex if scans else np.nan, feature.getIntensity(), len(boxes), scans)
        rows.append((*head, *tail, feature.getOverallQuality(), float(fwhm), most_abundant, np.nan))
    return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))


def _openms_main(mzml_path: str, param_path: str, output: str) -> None:
    """Child: run FeatureFinderAlgorithmPicked, write featureXML, table TSV and timing JSON."""
    import pyopenms as oms

    start = time.perf_counter()
    exp = _load_ms1(mzml_path)
    loaded = time.perf_counter()
    finder = oms.FeatureFinderAlgorithmPicked()
    param = finder.getDefaults()
    for key, value in json.loads(Path(param_path).read_text()).items():
        if not param.exists(key):
            raise SystemExit(f"unknown FeatureFinderAlgorithmPicked parameter {key!r}")
        default = param.getValue(key)  # keep the parameter's type (100 for a float is 100.0)
        param.setValue(key, type(default)(value) if isinstance(default, int | float) else value)
    features = oms.FeatureMap()
    finder.run(exp, features, param, oms.FeatureMap())
    ran = time.perf_counter()
    features.setUniqueIds()
    for feature in features:  # as the TOPP tool writes them: no subordinates
        feature.setSubordinates([])
    oms.FeatureXMLFile().store(output, features)
    _map_features(exp, features).to_csv(
        Path(output).with_suffix(".features.tsv"), sep="\t", index=False
    )
    timing = {
        "load_s": loaded - start,
        "detect_s": ran - loaded,
        "n_spectra": exp.getNrSpectra(),
        "pyopenms": oms.__version__,
    }
    Path(output).with_suffix(".json").write_text(json.dumps(timing))


def peer_versions() -> dict[str, str]:
    """Versions for logging: pyopenms (main env), biosaur2 and its main dependencies (read from
    its environment's metadata without starting it), or ``"not built"``."""
    from importlib.metadata import distributions, version

    out = {"pyopenms": version("pyopenms")}
    try:
        venv = peer_python("biosaur2").parents[1]
    except PeerUnavailableError:
        return {**out, "biosaur2": "not built"}
    found = {
        str(d.metadata["Name"]).lower(): d.version
        for d in distributions(path=[str(p) for p in venv.glob("lib/python3*/site-packages")])
    }
    out["biosaur2"] = found.get("biosaur2", "unknown")
    for package in ("numpy", "pandas", "scipy", "pyteomics"):
        out[f"biosaur2/{package}"] = found.get(package, "unknown")
    config = (venv / "pyvenv.cfg").read_text().splitlines()
    out["biosaur2/python"] = next((v.split("=")[1].strip() for v in config if "version =" in v), "")
    return out


if __name__ == "__main__":  # the OpenMS child: python -m deepms.tasks.deepiso.peers IN PARAMS OUT
    _openms_main(*sys.argv[1:])
