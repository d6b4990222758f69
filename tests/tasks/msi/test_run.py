"""Both msi tasks end to end through the runner on the real files, and the predictor streaming
an imzML given by path (masspix's 21 x 21 lipid cut-out) into a parquet table and a PNG map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import MSI, need

pytestmark = pytest.mark.slow


def test_tiny_tsne_run_scores_deepms_and_pca(compose_config) -> None:
    from deepms.training.runner import run

    result = run(compose_config("task=msi", "experiment=msi_tiny", "threads=1"))
    m = result.metrics
    for name in ("deepms", "pca"):
        for metric in ("trustworthiness", "continuity", "coherence"):
            assert 0 < m[f"test_{name}_{metric}"] <= 1
    assert m["test_deepms_pixels_per_s"] > 0
    lineage = result.lineage
    assert lineage.split.startswith("pixel_spatial_xblock_75_10_15_seed")
    assert sum(lineage.n_samples.values()) == 2000


def test_tiny_classifier_fold_scores_cnn_and_baselines(compose_config) -> None:
    from deepms.training.runner import run

    cfg = compose_config(
        "task=msi_classify", "experiment=msi_classify_tiny", "threads=1", "cv.fold=0"
    )
    result = run(cfg)
    for method in ("cnn", "nmf_lda", "logreg"):
        value = result.metrics[f"test_{method}_accuracy"]
        assert value in (0.0, 0.5, 1.0)  # one patient, two replicates
        assert math.isnan(result.metrics[f"test_{method}_auroc"])  # one class in the fold
    assert result.lineage.n_samples["test"] == 2


def test_predictor_streams_an_imzml_by_path(compose_config, tmp_path: Path) -> None:
    from deepms.tasks.msi.predict import MsiPredictor
    from deepms.tasks.msi.reading import read_section
    from deepms.training.runner import run

    imzml = need(MSI / "masspix_cut.imzML")
    ibd = need(MSI / "masspix_cut.ibd")
    cfg = compose_config(
        "task=msi",
        "experiment=msi_tiny",
        "threads=1",
        "data.limit_per_source=null",
        f"data.sources=[{{path: [{imzml}, {ibd}], format: imzml}}]",
        "data.batch_size=128",
    )
    result = run(cfg)
    predictor = MsiPredictor.from_checkpoint(result.best_checkpoint)
    out = tmp_path / "pixels.parquet"
    counts = predictor.predict_file(imzml, out, chunk_size=100, progress=False)
    table = pd.read_parquet(out)
    assert counts["inputs"] == len(table) == 441
    assert list(table.columns) == ["x", "y", "tsne_1", "tsne_2", "tsne_3"]
    assert (tmp_path / "pixels_rgb.png").stat().st_size > 1000
    # streamed chunks give what the trained model gives the whole section at once
    section = read_section(imzml)
    model = result.model
    expected = model.embed(predictor.preprocessing(section.intensities))
    got = table.sort_values(["y", "x"]).to_numpy()[:, 2:]
    order = np.lexsort((section.x, section.y))
    assert np.allclose(got, expected[order], atol=1e-4)


def test_classifier_predictor_reproduces_the_fold_model(compose_config) -> None:
    """Raw binned spectra through the predictor give the tested model's probabilities."""
    import torch

    from deepms.tasks.msi.predict import MsiPredictor
    from deepms.tasks.msi.reading import bin_spectra, read_spectra
    from deepms.training.runner import run

    cfg = compose_config(
        "task=msi_classify", "experiment=msi_classify_tiny", "threads=1", "cv.fold=0"
    )
    result = run(cfg)
    predictor = MsiPredictor.from_checkpoint(result.best_checkpoint)
    assert predictor.columns == ["p_control", "p_tumor"]
    mass, intensities, meta = read_spectra(
        [
            MSI / "maldiquant_fiedler2009subset.npz",
            MSI / "maldiquant_fiedler2009subset_metadata.csv",
        ]
    )
    _, binned = bin_spectra(mass, intensities, 20.0, 1000, 10000)
    frame = pd.DataFrame({"x": np.arange(16), "y": 1, "spectrum": list(binned)})
    out = predictor.predict(frame)
    test = result.datamodule.datasets["test"]
    rows = [meta["name"].tolist().index(i) for i in test.ids]
    model = result.model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(test.x), -1)[:, 1].numpy()
    assert np.allclose(out["p_tumor"].to_numpy()[rows], expected, atol=1e-5)
