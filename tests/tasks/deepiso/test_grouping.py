"""The learned grouper's inputs and assembly on hand-made traces: candidate boxes, ladder
residuals, elution cosine, labels from truth features, padding, and the greedy ladder assembly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepms.tasks.deepiso import detect, grouping
from deepms.tasks.deepiso.model import DeepisoModel
from tests.tasks.deepiso.test_model import _map

Z = 2
MONO = 600.0
STEP = detect.ISOTOPE_SPACING / Z


def _ladder_map() -> tuple[object, detect.Traces]:
    """A charge-2 feature (3 isotopes, apex scan 12), a trace off any ladder at the same RT, a
    trace on the ladder but 10 scans later, and a far trace (20 Th away)."""
    peaks = [(MONO + k * STEP, 12, 5, h) for k, h in enumerate([1e6, 8e5, 3e5])]
    peaks += [(MONO + 0.77, 12, 5, 4e5), (MONO + 3 * STEP, 22, 5, 5e5), (MONO + 20.0, 12, 5, 5e5)]
    ms1 = _map(peaks, n_scans=40)
    return ms1, detect.extract_traces(ms1, link_ppm=10, max_gap=1, min_scans=3)


def _trace(traces: detect.Traces, mz: float) -> int:
    return int(np.argmin(np.abs(traces.mz - mz)))


def test_candidate_sets_keep_the_box_with_the_seed_first() -> None:
    _, traces = _ladder_map()
    seed = _trace(traces, MONO + STEP)
    sets = grouping.candidate_sets(traces, np.array([seed]), max_candidates=6)
    row = sets[0]
    assert row[0] == seed
    present = set(row[row >= 0].tolist())
    expected = {_trace(traces, m) for m in (MONO, MONO + STEP, MONO + 2 * STEP, MONO + 0.77)}
    assert present == expected  # not the late trace (10 scans off), not the far one (20 Th)
    assert (row[len(present) :] == -1).all()


def test_a_full_box_keeps_the_ladder_candidates_first() -> None:
    _, traces = _ladder_map()
    seed = _trace(traces, MONO)
    sets = grouping.candidate_sets(traces, np.array([seed]), max_candidates=3)
    kept = set(sets[0, 1:].tolist())
    assert kept == {_trace(traces, MONO + STEP), _trace(traces, MONO + 2 * STEP)}


def test_geometry_has_zero_ladder_residual_at_the_true_charge_and_cosine_one() -> None:
    ms1, traces = _ladder_map()
    seed, first = _trace(traces, MONO), _trace(traces, MONO + STEP)
    sets = np.array([[seed, first, -1]])
    geometry = grouping.set_geometry(traces, grouping.trace_profiles(ms1, traces), sets, ppm=15.0)
    assert geometry.shape == (1, 3, grouping.N_GEOMETRY)
    n = 8  # columns: d_mz, d_apex, log apex ratio, log total ratio, overlap, log n_scans, cos, seed
    residual, position = geometry[0, 1, n : n + 5], geometry[0, 1, n + 5 :]
    # 1.00286/2 Th above: on the charge-2 ladder (and the charge-4 one, 2 positions up)
    assert abs(residual[Z - 1]) < 0.02 and abs(residual[3]) < 0.02
    assert abs(residual[0]) == pytest.approx(
        1.0
    )  # half a charge-1 step off: clipped at 4 ppm units
    assert position[Z - 1] * 7 == pytest.approx(1) and position[3] * 7 == pytest.approx(2)
    assert geometry[0, 1, 0] == pytest.approx(STEP / 6.5, rel=1e-4)
    assert geometry[0, 1, 1] == 0  # same apex
    assert geometry[0, 1, 2] == pytest.approx(np.log(0.8) / 5, rel=1e-3)
    assert geometry[0, 1, 4] == pytest.approx(1.0)  # same RT span
    assert geometry[0, 1, 6] == pytest.approx(1.0, abs=1e-6)  # same elution shape
    assert geometry[0, 0, 7] == 1 and geometry[0, 1, 7] == 0
    assert (geometry[0, 2] == 0).all()  # padding


def test_set_labels_mark_the_seeds_feature_and_leave_noise_seeds_empty() -> None:
    sets = np.array([[0, 1, 2, -1], [3, 0, 1, 2]])
    feature = np.array([7, 7, 9, -1])
    charge = np.array([2, 2, 3, 0])
    member, seed_charge = grouping.set_labels(sets, feature, charge)
    assert member.tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]
    assert seed_charge.tolist() == [2, 0]


def test_assembly_keeps_one_contiguous_ladder_of_the_predicted_charge() -> None:
    _, traces = _ladder_map()
    mono, first, second = (_trace(traces, MONO + k * STEP) for k in range(3))
    off = _trace(traces, MONO + 0.77)
    sets = np.array([[first, mono, second, off]])
    p_member = np.array([[1.0, 0.9, 0.8, 0.95]])  # the network also (wrongly) wants `off`
    p_charge = np.zeros((1, detect.MAX_CHARGE + 1))
    p_charge[0, Z] = 1.0
    groups = grouping.assemble_groups(traces, sets, p_member, p_charge, ppm=15.0)
    assert groups == [([mono, first, second], Z)]
    # without the mono trace in the prediction, the chain starts at the seed
    p_member[0, 1] = 0.2
    assert grouping.assemble_groups(traces, sets, p_member, p_charge)[0][0] == [first, second]


def test_assembly_takes_each_trace_once_strongest_seed_first() -> None:
    _, traces = _ladder_map()
    mono, first = _trace(traces, MONO), _trace(traces, MONO + STEP)
    sets = np.array([[first, mono], [mono, first]])
    p_charge = np.zeros((2, detect.MAX_CHARGE + 1))
    p_charge[:, Z] = 1.0
    groups = grouping.assemble_groups(traces, sets, np.ones((2, 2)), p_charge)
    assert groups == [([mono, first], Z)]  # the mono (1e6) seeds first and takes the other


def test_grouper_ignores_padding() -> None:
    torch.manual_seed(0)
    net = grouping.IsoGroupNet(width=16, heads=2, layers=1, dropout=0.0).eval()
    x = torch.randn(2, 5, grouping.N_FEATURES)
    mask = torch.tensor([[True, True, True, False, False]] * 2)
    x[1, 3:] = 100.0  # padding content differs between the two sets
    x[1, :3] = x[0, :3]
    member, charge = net(x, mask)
    assert member.shape == (2, 5) and charge.shape == (2, detect.MAX_CHARGE + 1)
    assert torch.allclose(member[0, :3], member[1, :3], atol=1e-5)
    assert torch.allclose(charge[0], charge[1], atol=1e-5)


def test_learned_grouper_needs_its_model_setting() -> None:
    with pytest.raises(ValueError, match=r"model\.grouper"):
        DeepisoModel(grouper="recurrent")
    with pytest.raises(ValueError, match="no learned grouper"):
        DeepisoModel(channels=(4, 8, 8), hidden=8).score_sets(
            np.zeros((1, 2, grouping.N_FEATURES), np.float32), np.ones((1, 2), bool)
        )


def test_ladder_jitter_moves_only_the_candidates_residuals() -> None:
    torch.manual_seed(1)
    model = DeepisoModel(
        channels=(4, 8, 8),
        hidden=8,
        grouper="learned",
        group_jitter_ppm=15.0,
        grouping={"ppm": 15.0},
    )
    geometry = torch.zeros(64, 4, grouping.N_GEOMETRY)
    jittered = model._jitter_ladder(geometry)
    cols = slice(grouping.N_RESIDUAL_START, grouping.N_RESIDUAL_START + detect.MAX_CHARGE)
    assert torch.equal(jittered[:, 0], geometry[:, 0])  # the seed is the reference
    assert torch.equal(jittered[..., : grouping.N_RESIDUAL_START], geometry[..., :8])
    assert torch.equal(jittered[..., cols.stop :], geometry[..., cols.stop :])
    shift = jittered[:, 1:, cols]
    assert shift.abs().max() > 0 and shift.abs().max() <= 1.0
    # one m/z shift per candidate moves every charge's residual alike
    assert torch.allclose(shift, shift[..., :1].expand_as(shift))
    # sd up to 15 ppm in units of 15 ppm / 4: well inside (-1, 1) on average
    assert shift.std() < 0.25
