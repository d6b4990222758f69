"""deepiso end to end: a tiny training run on simulated maps scored on held-out simulated maps
and the real OpenMS maps, then the predictor streaming the OpenMS example map by path into
featureXML (read back by pyopenms) and a Dinosaur-style TSV."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_result(compose_config):
    """One tiny run shared by the tests of this module (it trains for seconds)."""
    from deepms.training.runner import run

    return run(compose_config("task=deepiso", "experiment=deepiso_tiny", "threads=1"))


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory):
    import os

    from hydra import compose, initialize_config_dir

    root = Path(__file__).resolve().parents[3]
    mirror = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
    if not (mirror / "deepiso").is_dir():
        pytest.skip(f"no deepiso data under {mirror} (set DEEPMS_DATA_MIRROR)")
    tmp = tmp_path_factory.mktemp("deepiso_run")

    def _compose(*overrides: str):
        base = [
            f"paths.root_dir={root}",
            f"paths.output_dir={tmp / 'out'}",
            f"paths.mlruns_dir={tmp / 'mlruns'}",
            f"paths.data_mirror={mirror}",
            f"paths.cache_dir={tmp / 'cache'}",
            f"logger.mlflow.tracking_uri=sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
        ]
        with initialize_config_dir(str(root / "conf"), version_base="1.3"):
            return compose("config", overrides=[*base, *overrides])

    return _compose


def test_tiny_run_scores_simulated_and_real_maps(tiny_result) -> None:
    m = tiny_result.metrics
    assert m["test_deepms_sim_f1"] > 0.3
    for name in (
        "sim_precision",
        "sim_recall",
        "sim_quant_log2_mae",
        "openms_ref_recall",
        "openms_n_features",
        "replicates_n_in1",
        "replicates_n_in2",
        "replicates_reproducibility",
        "in1_spectra_per_s",
    ):
        assert f"test_deepms_{name}" in m, name
    assert 0 <= m["test_deepms_openms_ref_recall"] <= 1
    assert m["test_deepms_in1_spectra_per_s"] > 0
    assert "test_rules_only_sim_f1" in m  # the grouper without the CNN, for comparison
    assert "test_rules_grouper_sim_f1" in m  # the CNN with the rule-based grouper instead
    assert tiny_result.model.grouper is not None
    assert tiny_result.lineage.split == "simulated_seeds_2_1_1_seed42"


def test_candidate_sets_point_at_their_traces_windows(tiny_result) -> None:
    """A set's seed (and each member) is the trace whose window row it names: the seed's
    charge label equals that window's label, and members are isotope-trace windows."""
    datamodule = tiny_result.datamodule
    for part in ("train", "val"):
        sets = datamodule.set_datasets[part]
        _, is_iso, charge, _ = datamodule.datasets[part].tensors
        assert len(sets) > 100
        assert torch.equal(sets.charge, charge[sets.index[:, 0]])
        member_rows = sets.index[sets.member.bool()]
        assert len(member_rows) > len(sets) and (is_iso[member_rows] == 1).all()
        seeds_with_members = sets.member[:, 0].bool()
        assert (sets.charge[seeds_with_members] > 0).all()
        assert (sets.member[~seeds_with_members] == 0).all()
        windows, geometry, present, member, seed_charge = sets[0]
        assert windows.shape[0] == geometry.shape[0] == present.shape[0] == member.shape[0]
        assert seed_charge.ndim == 0


@pytest.mark.parametrize("suffix", [".featureXML", ".tsv"])
def test_predictor_streams_a_run_by_path(tiny_result, tmp_path: Path, suffix: str) -> None:
    import os

    from deepms.io.features import read_dinosaur_tsv, read_featurexml
    from deepms.io.ms1map import read_ms1_map
    from deepms.tasks.deepiso.predict import DeepisoPredictor

    mirror = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
    mzml = mirror / "deepiso" / "openms_LCMS-centroided.mzML"
    predictor = DeepisoPredictor.from_checkpoint(tiny_result.best_checkpoint)
    out = tmp_path / f"features{suffix}"
    counts = predictor.predict_file(mzml, out, chunk_size=40, progress=False)  # 3 blocks
    assert counts["spectra"] == 112  # each spectrum once (inputs also count context scans)
    features = read_featurexml(out) if suffix == ".featureXML" else read_dinosaur_tsv(out)
    assert len(features) == counts["features"] > 0
    assert features["charge"].between(1, 5).all()
    assert (features["rt_start"] <= features["rt_apex"]).all()
    # blocks with context give what the whole map gives (features reported once, whole)
    whole = tiny_result.model.detect(read_ms1_map(mzml))
    assert abs(len(whole) - len(features)) <= max(2, len(whole) // 10)
    if suffix == ".featureXML":
        pyopenms = pytest.importorskip("pyopenms")
        fmap = pyopenms.FeatureMap()
        pyopenms.FeatureXMLFile().load(str(out), fmap)
        assert fmap.size() == len(features)


def test_a_deeprt_model_gives_the_simulated_retention_times(
    compose_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``data.rt_model`` feeds the simulator through the registry: here a stand-in predictor
    whose RT falls with peptide length (the default hydrophobicity RT rises with it, rho ~0.8),
    so the simulated apexes must follow reverse length order."""
    import hashlib

    import pandas as pd
    from hydra.utils import instantiate
    from scipy.stats import spearmanr

    import deepms.registry
    import deepms.registry.reference

    checkpoint = tmp_path / "deeprt.ckpt"
    checkpoint.write_bytes(b"stand-in weights")
    seen: list[str] = []

    class LengthRT:
        def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
            seen.extend(frame["peptide"])
            return frame.assign(predicted_rt=-frame["peptide"].str.len().astype(float))

    monkeypatch.setattr(deepms.registry.reference, "resolve_checkpoint", lambda uri, t: checkpoint)
    monkeypatch.setattr(deepms.registry, "load_predictor", lambda path, **kw: LengthRT())
    cfg = compose_config(
        "task=deepiso",
        "experiment=deepiso_tiny",
        "data.rt_model=models:/deeprt@champion",
        "data.grouping=null",
    )
    datamodule = instantiate(cfg.data, _recursive_=False, _convert_="all")
    datamodule.setup("fit")
    truth = datamodule.test_maps[0].truth
    rho = spearmanr(truth["peptide"].str.len(), truth["rt_apex"]).statistic
    assert rho < -0.9
    assert set(truth["peptide"]) <= set(seen)
    extras = datamodule.lineage().extras
    assert extras["rt_model"] == "models:/deeprt@champion"
    assert extras["rt_model_sha256"] == hashlib.sha256(b"stand-in weights").hexdigest()
    assert not datamodule.set_datasets  # data.grouping=null: windows only
