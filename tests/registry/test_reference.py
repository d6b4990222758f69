"""The model-reference module: best checkpoint of a run (one rule), checkpoint trust, the model
class a checkpoint records, and the description check on a bare checkpoint file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from deepms.registry import ModelLoadError, load_predictor
from deepms.registry.reference import (
    DESCRIPTION_KEY,
    MODEL_CLASS_KEY,
    PREDICTOR_KEY,
    RegistryError,
    load_checkpoint,
    resolve_checkpoint,
)
from deepms.tasks.deepnovo.models import CasanovoModel
from deepms.tasks.deepnovo.predict import DeNovoPredictor
from deepms.tasks.deepnovo.vocab import Vocabulary
from deepms.tasks.pdeep.model import PDeepModel
from deepms.tasks.pdeep.predict import PDeepPredictor
from deepms.training.finetune import FinetuneError
from deepms.training.finetune import resolve_checkpoint as finetune_checkpoint
from tests.tasks.pdeep.test_predict import INPUT, PREDICTOR, save_checkpoint, tiny_model


class RecordedPDeep(PDeepModel):
    """Same hyperparameters as PDeepModel: only the recorded class can tell them apart."""


class NotAWeight:
    """Any pickled object beyond tensors and plain containers."""


# --- a run's best checkpoint -------------------------------------------------------------------


def _log_checkpoint(client, run_id: str, tmp: Path, folder: str, aliases, score, mode="max"):
    local = tmp / run_id / folder
    local.mkdir(parents=True)
    save_checkpoint(tiny_model(), local / f"{folder}.ckpt", dropout=score)  # marks the file
    (local / "aliases.txt").write_text(str(aliases))
    meta = {"score": score, "Checkpoint": {"mode": mode, "monitor": "val_x"}}
    (local / "metadata.yaml").write_text(yaml.safe_dump(meta))
    client.log_artifacts(run_id, str(local), folder)


@pytest.fixture
def store(tmp_path: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("x", artifact_location=(tmp_path / "art").as_uri())
    return uri, client, experiment


def test_best_checkpoint_is_the_best_scored_and_last_alone_is_an_error(store, tmp_path) -> None:
    uri, client, experiment = store
    several = client.create_run(experiment).info.run_id
    _log_checkpoint(client, several, tmp_path, "best-epoch001", ["best"], 0.25)
    _log_checkpoint(client, several, tmp_path, "best-epoch004", ["best"], 0.5)
    _log_checkpoint(client, several, tmp_path, "best-epoch007", [], 0.125)  # lower score
    _log_checkpoint(client, several, tmp_path, "last", ["latest"], 0.75)  # not a best one
    path = resolve_checkpoint(f"runs:/{several}", tracking_uri=uri, dst=tmp_path / "dl")
    assert path.name == "best-epoch004.ckpt"
    assert load_checkpoint(path)["hyper_parameters"]["dropout"] == 0.5
    minimised = client.create_run(experiment).info.run_id
    _log_checkpoint(client, minimised, tmp_path, "best-epoch002", ["best"], 0.5, "min")
    _log_checkpoint(client, minimised, tmp_path, "best-epoch003", ["best"], 0.25, "min")
    path = resolve_checkpoint(f"runs:/{minimised}", tracking_uri=uri, dst=tmp_path / "dl2")
    assert path.name == "best-epoch003.ckpt"
    only_last = client.create_run(experiment).info.run_id
    _log_checkpoint(client, only_last, tmp_path, "last", ["latest"], 0.75)
    with pytest.raises(RegistryError, match=f"run {only_last}: no best checkpoint"):
        resolve_checkpoint(f"runs:/{only_last}", tracking_uri=uri, dst=tmp_path / "dl3")
    with pytest.raises(FinetuneError, match="no best checkpoint"):  # no fallback to last
        finetune_checkpoint(f"runs:/{only_last}", uri)
    with pytest.raises(ModelLoadError, match="cannot tell which predictor"):
        load_predictor(f"runs:/{several}", tracking_uri=uri)  # no config, nothing recorded
    loaded = load_predictor(f"runs:/{several}", tracking_uri=uri, predictor=PREDICTOR)
    assert loaded.model.hparams.dropout == 0.5


def test_a_local_folder_follows_the_same_rule(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    save_checkpoint(tiny_model(), folder / "last.ckpt")
    assert resolve_checkpoint(str(folder)) == folder / "last.ckpt"  # the only one
    save_checkpoint(tiny_model(), folder / "best-epoch002.ckpt")
    assert resolve_checkpoint(str(folder)) == folder / "best-epoch002.ckpt"
    (folder / "best-epoch002.ckpt").unlink()
    save_checkpoint(tiny_model(), folder / "epoch009.ckpt")
    with pytest.raises(ModelLoadError, match="no best checkpoint"):
        resolve_checkpoint(str(folder))


# --- trust, recorded class, description ----------------------------------------------------------


def test_pickled_objects_need_trust(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "pickled.ckpt"
    state = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    torch.save({**state, "extra": NotAWeight()}, path)
    with pytest.raises(ModelLoadError, match=r"pickled\.ckpt: .*refused untrusted"):
        load_checkpoint(path)
    with pytest.raises(ModelLoadError, match="refused untrusted"):
        PDeepPredictor.from_checkpoint(path)
    assert isinstance(load_checkpoint(path, trusted=True)["extra"], NotAWeight)
    plain = save_checkpoint(model, tmp_path / "plain.ckpt")
    assert set(load_checkpoint(plain)) == {"state_dict", "hyper_parameters"}


def test_the_recorded_model_class_is_used(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "legacy.ckpt")  # no class recorded: the default
    assert type(PDeepPredictor.from_checkpoint(path).model) is PDeepModel
    state = torch.load(path, weights_only=True)
    state[MODEL_CLASS_KEY] = f"{__name__}.{RecordedPDeep.__qualname__}"
    torch.save(state, path)
    assert type(PDeepPredictor.from_checkpoint(path).model) is RecordedPDeep
    state[MODEL_CLASS_KEY] = "subprocess.run"  # only a LightningModule is ever built
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match=r"'subprocess\.run' is not a LightningModule"):
        PDeepPredictor.from_checkpoint(path)
    torch.manual_seed(0)
    vocab = Vocabulary([]).to_dict()
    casanovo = CasanovoModel(
        vocab, dim=16, heads=2, feedforward=32, max_length=12, beam_size=2, precursor_tolerance=20.0
    )
    state = {"state_dict": casanovo.state_dict(), "hyper_parameters": dict(casanovo.hparams)}
    torch.save(state, tmp_path / "legacy.ckpt")  # written before checkpoints named their class
    legacy = DeNovoPredictor.from_checkpoint(tmp_path / "legacy.ckpt")
    assert type(legacy.model) is CasanovoModel  # the documented legacy rule
    casanovo.on_save_checkpoint(state)  # what training writes
    assert state[MODEL_CLASS_KEY] == "deepms.tasks.deepnovo.models.casanovo.CasanovoModel"
    state[MODEL_CLASS_KEY] = "deepms.tasks.deepnovo.models.deepnovo.DeepNovoModel"
    torch.save(state, tmp_path / "casanovo.ckpt")  # the recorded class wins over any rule
    with pytest.raises(ModelLoadError, match="hyperparameters do not fit DeepNovoModel"):
        DeNovoPredictor.from_checkpoint(tmp_path / "casanovo.ckpt")


def test_checkpoint_records_predictor_and_description_and_it_is_checked(tmp_path: Path) -> None:
    model = tiny_model().train()
    next(iter(model.children())).eval()  # one submodule in eval mode: it must stay so
    modes = {name: m.training for name, m in model.named_modules()}
    model.deepms_predictor = PREDICTOR
    state = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(state)
    assert {name: m.training for name, m in model.named_modules()} == modes  # modes restored
    assert state[MODEL_CLASS_KEY] == "deepms.tasks.pdeep.model.PDeepModel"
    assert state[PREDICTOR_KEY] == PREDICTOR
    oxidation = state[DESCRIPTION_KEY]["modifications"]["Oxidation@M"]
    assert oxidation == {"accession": "UNIMOD:35", "mass": pytest.approx(15.994915)}
    path = tmp_path / "self_describing.ckpt"
    torch.save(state, path)
    loaded = load_predictor(str(path))  # the predictor comes from the checkpoint itself
    assert isinstance(loaded, PDeepPredictor)
    pd.testing.assert_frame_equal(loaded.predict(INPUT), PDeepPredictor(model).predict(INPUT))
    oxidation["mass"] = 16.5  # as if the Unimod table changed since training
    torch.save(state, path)
    stale = (
        r"self_describing\.ckpt: modification Oxidation@M \(UNIMOD:35\): trained with mass 16\.5"
    )
    with pytest.raises(ModelLoadError, match=stale):
        PDeepPredictor.from_checkpoint(path)
    with pytest.raises(ModelLoadError, match=stale):
        load_predictor(str(path))


def test_a_deeprt_ensemble_is_read_trusted_and_needs_its_stack(tmp_path: Path) -> None:
    from deepms.chem.encoding import N_RESIDUE_TOKENS
    from deepms.tasks.deeprt.model import RTEnsembleModel
    from deepms.tasks.deeprt.predict import RTPredictor

    model = RTEnsembleModel(
        N_RESIDUE_TOKENS, {"modifications": []}, "min", 30.0, 10.0, embed_dim=4, lstm_hidden=4
    )
    state = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    state[MODEL_CLASS_KEY] = "deepms.tasks.deeprt.model.RTEnsembleModel"
    torch.save(state, tmp_path / "unfitted.ckpt")
    with pytest.raises(ModelLoadError, match=r"unfitted\.ckpt: ensemble checkpoint without"):
        RTPredictor.from_checkpoint(tmp_path / "unfitted.ckpt")
    model.stack = {"a picklable stand-in": 1}
    model.on_save_checkpoint(state)  # the pickled stack, as training writes it
    for name, recorded in (("recorded", True), ("legacy", False)):  # legacy: told by the stack
        if not recorded:
            del state[MODEL_CLASS_KEY]
        torch.save(state, tmp_path / f"{name}.ckpt")
        loaded = RTPredictor.from_checkpoint(tmp_path / f"{name}.ckpt")
        assert type(loaded.model) is RTEnsembleModel
        assert loaded.model.stack == {"a picklable stand-in": 1}
