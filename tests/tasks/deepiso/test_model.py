"""deepiso's network shapes, trace linking, window geometry and the rule-based grouper on
hand-made traces of known charge and monoisotopic m/z."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepms.io.features import FEATURE_COLUMNS
from deepms.io.ms1map import Ms1Map
from deepms.tasks.deepiso import detect
from deepms.tasks.deepiso.model import DeepisoModel, IsoDetectNet


def _map(traces: list[tuple[float, int, int, float]], n_scans: int = 30) -> Ms1Map:
    """Gaussian-eluting traces (m/z, apex scan, half width, height), one peak per scan."""
    spectra = [[] for _ in range(n_scans)]
    for mz, apex, width, height in traces:
        for s in range(max(apex - width, 0), min(apex + width + 1, n_scans)):
            spectra[s].append((mz, height * np.exp(-0.5 * ((s - apex) / (width / 2)) ** 2)))
    mz, intensity, counts = [], [], []
    for peaks in spectra:
        peaks.sort()
        counts.append(len(peaks))
        mz += [p[0] for p in peaks]
        intensity += [p[1] for p in peaks]
    return Ms1Map(
        rt=np.arange(n_scans, dtype=float),
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        mz=np.array(mz),
        intensity=np.array(intensity, np.float32),
        spectrum_ids=[str(i) for i in range(n_scans)],
    )


def test_network_output_shapes() -> None:
    net = IsoDetectNet(16, 224, (4, 8, 8), 16)
    logit, charge, index = net(torch.zeros(5, 16, 224))
    assert logit.shape == (5,)
    assert charge.shape == (5, detect.MAX_CHARGE + 1)
    assert index.shape == (5, detect.MAX_INDEX + 1)


def test_model_scores_windows_as_probabilities() -> None:
    model = DeepisoModel(channels=(4, 8, 8), hidden=8)
    p_iso, p_charge, p_index = model.score_windows(np.random.rand(3, 16, 224).astype(np.float32))
    assert p_iso.shape == (3,) and ((p_iso >= 0) & (p_iso <= 1)).all()
    assert np.allclose(p_charge.sum(1), 1) and np.allclose(p_index.sum(1), 1)


def test_predict_step_on_a_labelled_batch_equals_score_windows() -> None:
    model = DeepisoModel(channels=(4, 8, 8), hidden=8).eval()
    windows = np.random.rand(4, 16, 224).astype(np.float32)
    labels = torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        predicted = model.predict_step((torch.from_numpy(windows), labels, labels, labels))
    for tensor, array in zip(predicted, model.score_windows(windows), strict=True):
        assert np.allclose(tensor.numpy(), array, atol=1e-6)


def test_traces_link_across_scans_and_windows_centre_them() -> None:
    ms1 = _map([(500.0, 10, 4, 1e6), (500.5, 10, 4, 5e5)])
    traces = detect.extract_traces(ms1, link_ppm=10, max_gap=1, min_scans=3)
    assert len(traces) == 2
    assert np.allclose(np.sort(traces.mz), [500.0, 500.5])
    assert (traces.apex == 10).all() and (traces.n_scans == 9).all()
    windows = detect.trace_windows(ms1, traces.mz, traces.apex, traces.apex_intensity)
    assert windows.shape == (2, 16, 224)
    first = int(np.argmin(traces.mz))
    assert windows[first, 8, 112] == pytest.approx(1.0)  # centre pixel: the apex, scaled to 1
    assert windows[first, 8, 112 + 50] == pytest.approx(np.sqrt(0.5))  # +0.5 Th neighbour


@pytest.mark.parametrize("charge", [1, 2, 3, 4])
def test_grouper_recovers_charge_and_mono_mz(charge: int) -> None:
    mono = 600.3
    heights = [1e6, 8e5, 3e5, 1e5]
    peaks = [(mono + k * detect.ISOTOPE_SPACING / charge, 12, 5, h) for k, h in enumerate(heights)]
    peaks.append((640.0, 20, 4, 5e5))  # an unrelated lone trace
    ms1 = _map(peaks)
    traces = detect.extract_traces(ms1, link_ppm=10, max_gap=1, min_scans=3)
    n = len(traces)
    p_charge = np.full((n, detect.MAX_CHARGE + 1), 0.02)
    p_charge[:, charge] = 0.9  # what a trained CNN says
    p_index = np.full((n, detect.MAX_INDEX + 1), 0.1)
    is_mono = np.isclose(traces.mz, mono)
    p_index[is_mono, 0] = 0.9
    features = detect.group_traces(ms1, traces, np.ones(n), p_charge, p_index)
    assert list(features.columns[: len(FEATURE_COLUMNS)]) == list(FEATURE_COLUMNS)
    assert len(features) == 1  # the lone trace has no isotope partner
    row = features.iloc[0]
    assert int(row["charge"]) == charge
    assert row["mz"] == pytest.approx(mono, abs=1e-6)
    assert int(row["n_isotopes"]) == 4
    assert row["rt_apex"] == 12.0 and row["rt_start"] == 7.0 and row["rt_end"] == 17.0
    assert row["averagine_corr"] > 0.8 and 0 < row["quality"] <= 1


def test_grouper_charge_from_spacing_when_the_cnn_is_undecided() -> None:
    mono = 700.0
    peaks = [
        (mono + k * detect.ISOTOPE_SPACING / 3, 12, 5, h) for k, h in enumerate([1e6, 9e5, 4e5])
    ]
    ms1 = _map(peaks)
    traces = detect.extract_traces(ms1, link_ppm=10, max_gap=1, min_scans=3)
    n = len(traces)
    uniform = np.full((n, 6), 1 / 6)
    features = detect.group_traces(ms1, traces, np.ones(n), uniform, uniform)
    assert len(features) == 1
    assert int(features.iloc[0]["charge"]) == 3
    assert features.iloc[0]["mz"] == pytest.approx(mono)


def test_labels_follow_the_truth_isotopes() -> None:
    import pandas as pd

    ms1 = _map([(500.0, 10, 4, 1e6), (500.5017, 10, 4, 5e5), (800.0, 10, 4, 1e5)])
    traces = detect.extract_traces(ms1, link_ppm=10, max_gap=1, min_scans=3)
    isotopes = pd.DataFrame(
        {
            "feature_id": [0, 0],
            "charge": [2, 2],
            "index": [0, 1],
            "mz": [500.0, 500.5017],
            "rt_start": [5.0, 5.0],
            "rt_end": [15.0, 15.0],
        }
    )
    is_iso, charge, index = detect.label_traces(traces, ms1.rt, isotopes)
    order = np.argsort(traces.mz)
    assert is_iso[order].tolist() == [1, 1, 0]
    assert charge[order].tolist() == [2, 2, 0]
    assert index[order].tolist() == [0, 1, -1]


@pytest.mark.parametrize("merge", [False, True])
def test_a_missing_isotope_splits_the_ladder_unless_merged(merge: bool) -> None:
    mono, z = 650.0, 2
    heights = {0: 1e6, 1: 8e5, 3: 3e5, 4: 1e5}  # isotope 2 missing (e.g. below the noise)
    ms1 = _map([(mono + k * detect.ISOTOPE_SPACING / z, 12, 5, h) for k, h in heights.items()])
    traces = detect.extract_traces(ms1, link_ppm=10, max_gap=1, min_scans=3)
    n = len(traces)
    p_charge = np.full((n, detect.MAX_CHARGE + 1), 0.02)
    p_charge[:, z] = 0.9
    p_index = np.full((n, detect.MAX_INDEX + 1), 0.1)
    p_index[np.isclose(traces.mz, mono), 0] = 0.9
    features = detect.group_traces(ms1, traces, np.ones(n), p_charge, p_index, merge_splits=merge)
    if merge:
        assert len(features) == 1 and int(features.iloc[0]["n_isotopes"]) == 4
        assert features.iloc[0]["mz"] == pytest.approx(mono)
    else:  # the remnant above the gap is a second, wrongly monoisotopic feature
        assert sorted(features["n_isotopes"].astype(int)) == [2, 2]
