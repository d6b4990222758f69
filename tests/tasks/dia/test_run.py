"""``experiment=dia_tiny`` end to end through the runner on a synthetic PyProphet TSV given by
path: the logged metrics exist and are sane, the scored table and plots are artifacts, and the
best checkpoint, through the predictor, scores a file with q-values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.tasks.dia.synthetic import peak_groups, write_pyprophet_tsv

pytestmark = pytest.mark.slow


def test_tiny_run_logs_identifications_and_entrapment(compose_config, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.tasks.dia.predict import DiaPredictor
    from deepms.training.runner import run

    table = write_pyprophet_tsv(peak_groups(150, seed=1), tmp_path / "scores.tsv")
    cfg = compose_config(
        "task=dia",
        "experiment=dia_tiny",
        "threads=1",
        f"data.sources=[{{path: {table}, format: pyprophet_tsv}}]",
    )
    result = run(cfg)
    metrics = result.metrics
    # 150 target precursors, ~105 with a true peak group: most found at 1 %, none beyond 150
    at = [metrics[f"test_precursors_at_{p}pct"] for p in (1, 5, 10)]
    assert 40 <= at[0] <= at[1] <= at[2] <= 150
    for t in (1, 5, 10):
        for key in ("fdp", "fdp_lower", "fdp_upper", "pi0_fdp"):
            assert 0 <= metrics[f"test_entrapment_{key}_at_{t}pct"] <= 1
    assert metrics["test_entrapment_fdp_lower_at_10pct"] < 0.3
    assert 0 < metrics["test_pi0"] <= 1

    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    assert client.get_run(result.run_id).data.metrics["val_precursors_at_1pct"] > 0
    scored = pd.read_csv(
        client.download_artifacts(result.run_id, "dia/scored_peak_groups.tsv"), sep="\t"
    )
    assert len(scored) == 150 * 2 * 4  # every target, decoy and entrapment row
    assert scored["entrapment"].any() and scored["decoy"].any()
    assert {"score", "rank", "q_precursor", "q_pi0_precursor", "pep_precursor"} <= set(scored)
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {f"plots/{n}.png" for n in ("identifications_vs_q", "score_histogram")} <= plots

    predictor = DiaPredictor.from_checkpoint(result.best_checkpoint)
    out = predictor.predict(next(iter(predictor.read_input(table, 10_000))))
    assert len(out) == 1200 and out["q_precursor"].between(0, 1).all()
    assert np.isfinite(out["score"]).all()
    best = out[out["best"] & ~out["decoy"]]
    assert (best["q_precursor"] <= 0.01).sum() >= 40
