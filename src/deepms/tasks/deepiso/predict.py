"""deepiso as a predictor: an LC-MS1 run in, peptide features out (featureXML or Dinosaur TSV).

``deepms predict models:/deepiso@champion --input run.mzML --output features.featureXML`` (or
``.tsv``) streams the run: spectra are read in blocks of ``chunk_size`` scans, each block is
detected together with ``overlap`` scans of context on both sides, and a feature is kept by the
block that holds its apex (so a feature across a block border is reported once, whole). Memory is
one block's peaks and windows, not the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepms.io.features import FEATURE_COLUMNS
from deepms.io.ms1map import Ms1Map
from deepms.registry.predictor import BatchPredictor
from deepms.tasks.deepiso import detect, grouping

MODEL = "deepms.tasks.deepiso.model.DeepisoModel"


def detect_features(
    model: Any,
    ms1: Ms1Map,
    chunk: int = 4096,
    rules_only: bool = False,
    grouper: str | None = None,
) -> pd.DataFrame:
    """The whole detector on a map: traces -> CNN per trace window -> grouper -> features.

    ``rules_only`` skips the network (every trace an isotope trace, charge and index uniform):
    the ablation that shows what the CNN adds to the grouper. ``grouper`` overrides the model's
    (``"rules"`` on a learned-grouper model: the ablation that shows what the grouper adds).
    """
    h = model.hparams
    traces = detect.extract_traces(ms1, float(h.link_ppm), int(h.max_gap), int(h.min_scans))
    if rules_only:
        n = len(traces)
        uniform = np.full((n, detect.MAX_CHARGE + 1), 1.0 / (detect.MAX_CHARGE + 1))
        return detect.group_traces(
            ms1,
            traces,
            np.ones(n),
            uniform,
            uniform,
            min_p_iso=0.5,
            ppm=float(h.group_ppm),
            apex_scans=int(h.apex_scans),
            min_isotopes=int(h.min_isotopes),
            merge_splits=bool(h.get("merge_splits", False)),
        )
    p_iso, p_charge, p_index = [], [], []
    for start in range(0, len(traces), chunk):
        part = slice(start, start + chunk)
        windows = detect.trace_windows(
            ms1,
            traces.mz[part],
            traces.apex[part],
            traces.apex_intensity[part],
            int(h.window_scans),
            int(h.window_bins),
            float(h.mz_step),
        )
        a, b, c = model.score_windows(windows)
        p_iso.append(a)
        p_charge.append(b)
        p_index.append(c)
    if not len(traces):
        return detect.features_from_groups(ms1, traces, [], np.empty(0))
    p_iso, p_charge, p_index = (np.concatenate(p) for p in (p_iso, p_charge, p_index))
    if (grouper or h.get("grouper", "rules")) == "learned":
        return learned_grouping(model, ms1, traces, p_iso, p_charge, p_index)
    return detect.group_traces(
        ms1,
        traces,
        p_iso,
        p_charge,
        p_index,
        min_p_iso=float(h.min_p_iso),
        ppm=float(h.group_ppm),
        apex_scans=int(h.apex_scans),
        min_isotopes=int(h.min_isotopes),
        merge_splits=bool(h.get("merge_splits", False)),
    )


def learned_grouping(
    model: Any,
    ms1: Ms1Map,
    traces: detect.Traces,
    p_iso: np.ndarray,
    p_charge: np.ndarray,
    p_index: np.ndarray,
) -> pd.DataFrame:
    """IsoGrouping by the model's grouper: every trace the CNN calls an isotope trace seeds a
    candidate set; sets are scored in one pass and assembled greedily (grouping.py)."""
    h = model.hparams
    box = dict(h.grouping or {})
    seeds = np.flatnonzero(p_iso >= float(h.min_p_iso))
    sets, geometry = grouping.sets_and_geometry(ms1, traces, seeds, box)
    answers = np.column_stack([p_iso, p_charge, p_index]).astype(np.float32)
    mask = sets >= 0
    cnn = np.where(mask[..., None], answers[np.clip(sets, 0, None)], 0.0).astype(np.float32)
    p_member, p_set_charge = model.score_sets(np.concatenate([geometry, cnn], -1), mask)
    groups = grouping.assemble_groups(
        traces, sets, p_member, p_set_charge, float(box.get("ppm", 15.0))
    )
    kept = [(members, z) for members, z in groups if len(members) >= int(h.min_isotopes)]
    return detect.features_from_groups(ms1, traces, kept, p_iso)


def frame_to_map(frame: pd.DataFrame) -> Ms1Map:
    """Rows ``rt, mz, intensity`` (arrays per spectrum) -> an :class:`Ms1Map`."""
    mz = [np.asarray(v, float) for v in frame["mz"]]
    intensity = [np.asarray(v, np.float32) for v in frame["intensity"]]
    counts = np.array([len(v) for v in mz], dtype=np.int64)
    return Ms1Map(
        rt=frame["rt"].to_numpy(float),
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        mz=np.concatenate(mz) if mz else np.empty(0),
        intensity=np.concatenate(intensity) if intensity else np.empty(0, np.float32),
        spectrum_ids=[str(i) for i in range(len(frame))],
    )


class DeepisoPredictor(BatchPredictor):
    """Features of MS1 spectra (one row per spectrum; a ``core`` column marks the block's own)."""

    row_independent = False  # a file is predicted as a whole (record_errors.py)

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "rt": ("double", True),
        "mz": ("string", True),
        "intensity": ("string", True),
    }
    model_class: ClassVar[str] = MODEL
    overlap: int = 60  # scans of context each side of a block

    def __init__(self, model: Any, batch_size: int = 1024, precision: str = "32") -> None:
        self.model = model.eval()
        self.batch_size, self.precision = batch_size, "32"
        self.configure(precision=precision)
        self.spectra_seen = 0  # core spectra of the blocks predicted (context scans not counted)

    def describe(self) -> dict[str, Any]:
        h = self.model.hparams
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "window": [int(h.window_scans), int(h.window_bins), float(h.mz_step)],
            "link_ppm": float(h.link_ppm),
            "outputs": "FEATURE_COLUMNS",
        }

    def input_example(self) -> pd.DataFrame:
        mz = [[500.0, 500.5, 501.0], [500.0, 500.5, 501.0]]
        return pd.DataFrame({"rt": [1.0, 2.0], "mz": mz, "intensity": [[1e5, 6e4, 2e4]] * 2})

    def predict(self, frame: pd.DataFrame, **params: Any) -> pd.DataFrame:
        ms1 = frame_to_map(frame)
        self.spectra_seen += int(frame["core"].sum()) if "core" in frame else len(frame)
        features = detect_features(self.model, ms1, self.batch_size)
        if "core" in frame and len(features):
            core_rt = frame["rt"].to_numpy(float)[frame["core"].to_numpy(bool)]
            if len(core_rt):
                inside = (features["rt_apex"] >= core_rt.min()) & (
                    features["rt_apex"] <= core_rt.max()
                )
                features = features[inside.to_numpy()]
        return features.reset_index(drop=True)

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """Blocks of spectra from an mzML (``.mzML`` or gzipped), each with its context scans."""
        if options:
            raise ValueError(f"DeepisoPredictor: input options {sorted(options)} unused")
        from deepms.io.ms1map import iter_ms1_spectra

        block = max(min(int(chunk_size), 1000), 1)

        def blocks() -> Iterator[pd.DataFrame]:
            rows: list[tuple[float, np.ndarray, np.ndarray]] = []
            core_start = 0  # index in rows of the first spectrum not yet reported
            for spectrum in iter_ms1_spectra(path, on_error="skip", empty="keep"):
                rows.append((spectrum.retention_time, spectrum.mz, spectrum.intensity))
                if len(rows) - core_start >= block + self.overlap:
                    yield _block(rows, core_start, core_start + block)
                    drop = max(core_start + block - self.overlap, 0)
                    rows = rows[drop:]
                    core_start = core_start + block - drop
            if len(rows) > core_start:
                yield _block(rows, core_start, len(rows))

        return blocks()

    def write_output(
        self, tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]
    ) -> dict[str, int]:
        """featureXML (``.featureXML``) or Dinosaur-style TSV (``.tsv``), ids renumbered.

        Features are few (thousands per run), so they are collected and sorted before writing.
        ``inputs`` of :meth:`predict_file` counts spectra with their context; ``spectra`` here
        counts each spectrum once.
        """
        self.spectra_seen = 0
        from deepms.io.features import write_dinosaur_tsv, write_featurexml

        frames = [t for t in tables if len(t)]
        empty = pd.DataFrame(columns=list(FEATURE_COLUMNS))
        features = pd.concat(frames, ignore_index=True) if frames else empty
        features = features.sort_values(["rt_apex", "mz"]).reset_index(drop=True)
        features["feature_id"] = [f"f_{i}" for i in range(len(features))]
        suffix = Path(path).suffix.lower()
        if suffix == ".featurexml":
            write_featurexml(features, path)
        elif suffix == ".tsv":
            write_dinosaur_tsv(features.drop(columns=["hulls"], errors="ignore"), path)
        else:
            raise ValueError(f"deepiso writes .featureXML or .tsv, not {suffix!r}")
        return {"features": len(features), "spectra": self.spectra_seen}


def _block(rows: list[tuple[float, np.ndarray, np.ndarray]], start: int, stop: int) -> pd.DataFrame:
    """Spectra ``rows[start - overlap : stop + overlap]`` as a frame, ``core`` on [start, stop)."""
    lo = max(start - DeepisoPredictor.overlap, 0)
    hi = min(stop + DeepisoPredictor.overlap, len(rows))
    part = rows[lo:hi]
    core = np.zeros(len(part), dtype=bool)
    core[start - lo : stop - lo] = True
    return pd.DataFrame(
        {
            "rt": [r[0] for r in part],
            "mz": [r[1] for r in part],
            "intensity": [r[2] for r in part],
            "core": core,
        }
    )
