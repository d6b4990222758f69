"""Calibration to a new LC system recovers known shifts on synthetic head outputs."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.tasks.deeprt.calibration import RTCalibration


def _heads(n: int, k: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, k))


def test_linear_shift_is_recovered_exactly() -> None:
    heads = _heads(300)
    observed = 12.5 * heads[:, 0] + 40.0  # a new gradient: the first head, stretched and moved
    for method in ("linear", "piecewise", "ridge"):
        fitted = RTCalibration.fit(heads, observed, method, alpha=1e-8)
        test = _heads(200, seed=1)
        np.testing.assert_allclose(fitted.apply(test), 12.5 * test[:, 0] + 40.0, atol=1e-3)
    fitted = RTCalibration.fit(heads, observed, "linear")
    assert fitted.weights[0] == pytest.approx(12.5) and fitted.intercept == pytest.approx(40.0)
    assert fitted.weights[1:] == [0.0, 0.0]


def test_monotone_nonlinear_shift_is_recovered_by_the_piecewise_map() -> None:
    heads = _heads(1000)
    shift = lambda x: 30 * np.tanh(x / 2) + 50  # noqa: E731  (a gradient that flattens at the ends)
    observed = shift(heads[:, 0])
    test = _heads(500, seed=1)
    test = test[np.abs(test[:, 0]) < 2.5]  # inside the reference range
    truth = shift(test[:, 0])
    piecewise = RTCalibration.fit(heads, observed, "piecewise", n_knots=12)
    linear = RTCalibration.fit(heads, observed, "linear")
    piecewise_error = np.abs(piecewise.apply(test) - truth).mean()
    assert piecewise_error < 0.25  # of a 60-minute range
    assert piecewise_error < np.abs(linear.apply(test) - truth).mean() / 5


def test_ridge_mixes_the_heads_of_a_system_between_known_ones() -> None:
    heads = _heads(400)
    observed = 2.0 * heads[:, 0] - 1.0 * heads[:, 2] + 5.0
    fitted = RTCalibration.fit(heads, observed, "ridge", alpha=1e-8, heads=["a", "b", "c"])
    test = _heads(100, seed=2)
    np.testing.assert_allclose(fitted.apply(test), 2 * test[:, 0] - test[:, 2] + 5, atol=1e-3)
    single = RTCalibration.fit(heads, observed, "piecewise")  # one head cannot explain it
    assert np.abs(single.apply(test) - (2 * test[:, 0] - test[:, 2] + 5)).mean() > 0.3


def test_few_references_get_few_knots_and_bad_input_is_refused() -> None:
    heads = _heads(100)
    fitted = RTCalibration.fit(heads, heads[:, 0] * 3, "piecewise", n_knots=8)
    assert len(fitted.knots) == 2  # 100 peptides: a straight line, not 8 knots of noise
    restored = RTCalibration.from_dict(fitted.to_dict())
    np.testing.assert_allclose(restored.apply(heads), fitted.apply(heads))
    with pytest.raises(ValueError, match="at least 3"):
        RTCalibration.fit(heads[:2], np.ones(2))
    with pytest.raises(ValueError, match="unknown calibration method"):
        RTCalibration.fit(heads, heads[:, 0], "spline")
    with pytest.raises(ValueError, match="3 heads"):
        fitted.apply(heads[:, :2])


def test_reference_file_keeps_good_rows_and_names_the_bad_ones(tmp_path, caplog) -> None:
    from deepms.tasks.deeprt.predict import read_reference

    path = tmp_path / "reference.csv"
    path.write_text(
        "peptide,rt\nPEPTIDEK,10.5\nPEPXIDEK,11\nLGEYGFQNALIVR,abc\nACDK,3\nM[Oxidation]K,4\n"
    )
    with caplog.at_level("WARNING"):
        peptides, observed = read_reference(path)
    assert [p.to_proforma() for p in peptides] == ["PEPTIDEK", "ACDK", "M[Oxidation]K"]
    assert observed.tolist() == [10.5, 3.0, 4.0]
    assert "reference.csv: skipped 2 reference rows; first: line 3 (PEPXIDEK)" in caplog.text
    (tmp_path / "few.csv").write_text("peptide,rt\nPEPTIDEK,1\nACDK,2\n")
    with pytest.raises(ValueError, match=r"few\.csv: 2 usable rows"):
        read_reference(tmp_path / "few.csv")
    (tmp_path / "columns.csv").write_text("sequence,time\nPEPTIDEK,1\n")
    with pytest.raises(ValueError, match="needs columns peptide and rt"):
        read_reference(tmp_path / "columns.csv")
