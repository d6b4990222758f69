"""The section datamodule's split, the evaluation metrics and the pictures on hand-made grids."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.tasks.msi.data import random_split, spatial_split
from deepms.tasks.msi.evaluate import continuity, spatial_coherence, trustworthiness
from deepms.tasks.msi.pictures import grid, rgb
from deepms.tasks.msi.preprocess import Preprocessing


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    xx, yy = np.meshgrid(np.arange(1, w + 1), np.arange(1, h + 1))
    return xx.ravel(), yy.ravel()


def test_spatial_split_cuts_whole_columns_left_to_right() -> None:
    x, y = _grid(20, 5)
    parts = spatial_split(x, y, (0.7, 0.1, 0.2))
    for column in range(1, 21):
        assert len(set(parts[x == column])) == 1  # a column is never cut
    order = {"train": 0, "val": 1, "test": 2}
    codes = np.array([order[p] for p in parts])
    assert np.all(np.diff(codes[np.argsort(x, kind="stable")]) >= 0)  # train | val | test
    assert (parts == "test").sum() == 20 and (parts == "train").sum() == 70


def test_random_split_fractions() -> None:
    parts = random_split(10_000, (0.8, 0.1, 0.1), seed=1)
    assert abs((parts == "train").mean() - 0.8) < 0.02
    assert set(parts) == {"train", "val", "test"}


def test_coherence_by_hand() -> None:
    x, y = _grid(4, 4)
    assert spatial_coherence(x, y, np.zeros(16)) == 1.0
    assert spatial_coherence(x, y, (x + y) % 2) == 0.0  # checkerboard: no neighbour agrees
    # left half 0, right half 1: 24 neighbour pairs, the 4 across the cut disagree
    assert spatial_coherence(x, y, (x > 2).astype(int)) == pytest.approx(20 / 24)
    # a missing pixel removes its pairs
    keep = ~((x == 1) & (y == 1))
    assert spatial_coherence(x[keep], y[keep], np.zeros(15)) == 1.0


def test_trustworthiness_and_continuity_of_an_exact_copy_and_of_noise() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(200, 5))
    assert trustworthiness(data, data, 5) == pytest.approx(1.0)
    assert continuity(data, data, 5) == pytest.approx(1.0)
    noise = rng.normal(size=(200, 2))
    assert trustworthiness(data, noise, 5) < 0.7
    assert continuity(data, noise, 5) < 0.7


def test_preprocessing_fits_on_training_rows_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    raw = rng.gamma(2.0, size=(50, 8)).astype(np.float32)
    pre = Preprocessing("tic", "log1p", True).fit(raw[:30])
    z = pre(raw[:30])
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-3)
    again = Preprocessing.from_dict(pre.to_dict())
    assert np.allclose(again(raw), pre(raw))


def test_pictures_grid_and_rgb() -> None:
    image = grid(np.array([1, 3]), np.array([2, 1]), np.array([5.0, 7.0]))
    assert image.shape == (2, 3) and image[1, 0] == 5.0 and image[0, 2] == 7.0
    assert np.isnan(image[0, 0])
    colours = rgb(np.random.default_rng(0).normal(size=(100, 3)))
    assert colours.min() >= 0 and colours.max() <= 1 and colours.shape == (100, 3)
