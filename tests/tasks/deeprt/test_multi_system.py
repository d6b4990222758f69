"""Several LC systems in one run (a head each), held-out modifications, and ``--calibrate``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.tasks.deeprt.data import HELD_OUT_MODS, RTDataModule

HYDROPHOBIC = dict(zip("ACDEFGHIKLMNPQRSTVWY", np.linspace(-1, 1, 20), strict=True))


def _peptides(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = list("ACDEFGHILNPQRSTVWY")
    seqs = {"".join(rng.choice(letters, rng.integers(7, 15))) + "K" for _ in range(n)}
    out = []
    for i, seq in enumerate(sorted(seqs)):
        if i % 5 == 0:  # every fifth also as an oxidised form (an M at the second position)
            out.append(seq[0] + "M" + seq[1:])
            out.append(seq[0] + "M[Oxidation]" + seq[1:])
        else:
            out.append(seq)
    return out


def _score(peptide: str) -> float:
    seq = peptide.replace("[Oxidation]", "")
    return sum(HYDROPHOBIC[a] for a in seq) - 0.8 * peptide.count("[Oxidation]")


def _table(path: Path, peptides: list[str], scale: float, offset: float) -> Path:
    rt = [offset + scale * _score(p) for p in peptides]
    pd.DataFrame({"peptide": peptides, "rt": rt}).to_csv(path, index=False)
    return path


@pytest.fixture
def two_systems(tmp_path: Path) -> list[dict]:
    a = _table(tmp_path / "column_a.csv", _peptides(300, 0), 5.0, 40.0)  # minutes
    b = _table(tmp_path / "column_b.csv", _peptides(300, 1), 120.0, 1800.0)  # seconds
    return [
        {"path": str(a), "format": "rt_proforma", "unit": "min", "system": "column_a"},
        {"path": str(b), "format": "rt_proforma", "unit": "s", "system": "column_b"},
    ]


def test_each_system_keeps_its_unit_scaling_and_head_index(two_systems) -> None:
    datamodule = RTDataModule(two_systems, max_per_system=100)
    datamodule.setup()
    assert datamodule.systems == ["column_a", "column_b"]
    assert datamodule.system_units == {"column_a": "min", "column_b": "min"}  # s becomes min
    train = datamodule.datasets["train"].samples
    systems = {s.system for s in train}
    assert systems == {0, 1}
    stats = datamodule.model_kwargs()["systems"]
    for index, entry in enumerate(stats):
        rts = [s.rt for s in train if s.system == index]
        assert entry["rt_mean"] == pytest.approx(np.mean(rts))
        assert entry["rt_std"] == pytest.approx(np.std(rts))
    assert stats[1]["rt_mean"] == pytest.approx(30, abs=3)  # 1800 s = 30 min, around it
    groups = {s.peptide.sequence for part in datamodule.datasets.values() for s in part.samples}
    assert len(groups) <= 200  # 100 peptide groups per system at most
    assert datamodule.split_name.endswith("_max100_per_system")


def test_held_out_modification_goes_to_its_own_part_with_its_sequences(two_systems) -> None:
    datamodule = RTDataModule(two_systems[:1], held_out_mods=["oxidation"])
    datamodule.setup()
    held = datamodule.datasets[HELD_OUT_MODS].samples
    assert held and all("Oxidation" in s.peptide.to_proforma() for s in held)
    held_seqs = {s.peptide.sequence for s in held}
    for part in ("train", "val"):
        seqs = {s.peptide.sequence for s in datamodule.datasets[part].samples}
        assert not seqs & held_seqs  # not even the unoxidised form
    assert "Oxidation@M" not in datamodule.encoder.modifications
    assert datamodule.split_name.endswith("+without_oxidation")

    from deepms.errors import UnknownModificationError

    with pytest.raises(UnknownModificationError, match="Oxidation@M"):
        RTDataModule(
            two_systems[:1], held_out_mods=["Oxidation"], mod_encoding="vocabulary"
        ).setup()


def test_one_system_with_two_units_is_refused(two_systems) -> None:
    mixed = [two_systems[0], {**two_systems[1], "system": "column_a"}]
    with pytest.raises(ValueError, match="column_a's sources give RT in irt and min"):
        RTDataModule([{**mixed[0], "unit": "irt"}, mixed[1]])


@pytest.mark.slow
def test_multi_system_run_then_predict_a_new_system_with_calibrate(
    compose_config, two_systems, tmp_path
) -> None:
    from deepms.chem import parse_proforma
    from deepms.cli import main as deepms
    from deepms.tasks.deeprt.predict import RTPredictor
    from deepms.training.runner import run

    sources = (
        "["
        + ",".join("{" + ",".join(f"{k}:'{v}'" for k, v in s.items()) + "}" for s in two_systems)
        + "]"
    )
    cfg = compose_config(
        "task=deeprt",
        "experiment=deeprt_tiny",
        f"data.sources={sources}",
        "data.max_peptides=null",
        "data.held_out_mods=[Oxidation]",
        "trainer.max_epochs=3",
    )
    result = run(cfg)
    for key in ("test_mae", "test_column_a_mae", "test_column_b_mae"):
        assert math.isfinite(result.metrics[key]), key
    assert math.isfinite(result.metrics["test_held_out_mods_column_a_mae"])

    predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
    assert predictor.model.system_names == ["column_a", "column_b"]
    # trained without Oxidation, it still predicts oxidised peptides (from their composition)
    oxidised = predictor.predict_peptides([parse_proforma("AMM[Oxidation]EPTIDEK")])
    assert np.isfinite(oxidised).all()
    outputs = predictor.head_outputs([parse_proforma(p) for p in ("PEPTIDEK", "ACDEFGHIK")])
    assert outputs.shape == (2, 2)
    predictor.select_system("column_b")
    with pytest.raises(ValueError, match="systems are"):
        predictor.select_system("column_z")

    # --average-with: the mean of models trained alike; a copy whose first head sits 1 std later
    import torch

    state = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)
    state["state_dict"]["net.head.3.bias"][0] += 1.0
    shifted = tmp_path / "shifted.ckpt"
    torch.save(state, shifted)
    plain = RTPredictor.from_checkpoint(result.best_checkpoint)
    averaged = RTPredictor.from_checkpoint(result.best_checkpoint, average_with=str(shifted))
    peptides = [parse_proforma(p) for p in ("PEPTIDEK", "ACDEFGHIK")]
    std = plain.model.systems[0]["rt_std"]
    np.testing.assert_allclose(
        averaged.predict_peptides(peptides), plain.predict_peptides(peptides) + std / 2, rtol=1e-5
    )

    # a third column: RT = 2 x column_a's scale + 7, calibrated from 120 reference peptides
    reference = _peptides(150, 7)[:120]
    _table(tmp_path / "reference.csv", reference, 10.0, 87.0)
    (tmp_path / "in.csv").write_text("peptide\nPEPTIDEK\nLGEYGFQNALIVR\n")
    args = ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
    ref = ["--calibrate", str(tmp_path / "reference.csv"), "--calibration", "ridge"]
    assert deepms(["predict", result.best_checkpoint, *args, *ref]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.rt_unit) == ["calibrated", "calibrated"]
    saved = json.loads((tmp_path / "out.csv.calibration.json").read_text())
    assert saved["method"] == "ridge" and saved["n_reference"] == 120
    assert saved["heads"] == ["column_a", "column_b"]
    assert saved["reference"].endswith("reference.csv")


def test_keep_all_exempts_a_system_from_the_cap(two_systems) -> None:
    kept = [{**two_systems[0], "keep_all": True}, two_systems[1]]
    datamodule = RTDataModule(kept, max_per_system=50)
    datamodule.setup()
    per_system = [0, 0]
    for part in datamodule.datasets.values():
        for sample in part.samples:
            per_system[sample.system] += 1
    assert per_system[1] <= 50 * 2  # capped: 50 peptide groups (a group may hold two forms)
    assert per_system[0] > 250  # whole: every peptide of column_a


def _rt_model(systems: list[dict] | None = None):
    import torch

    from deepms.chem.encoding import N_RESIDUE_TOKENS
    from deepms.tasks.deeprt.model import RTModel

    torch.manual_seed(0)
    return RTModel(
        N_RESIDUE_TOKENS,
        {"modifications": [], "mod_encoding": "both"},
        "min",
        30.0,
        10.0,
        embed_dim=4,
        conv_channels=4,
        n_conv=1,
        lstm_hidden=8,
        systems=systems,
    ).eval()


def test_fine_tuning_from_a_multi_system_model_starts_from_the_ridge_mix_of_its_heads() -> None:
    import torch

    from deepms.chem import parse_proforma
    from deepms.chem.encoding import PeptideEncoder
    from deepms.tasks.deeprt.data import encode_peptides

    systems = [
        {"name": n, "rt_unit": "min", "rt_mean": m, "rt_std": d}
        for n, m, d in (("a", 30.0, 10.0), ("b", 50.0, 5.0), ("c", 20.0, 8.0))
    ]
    pretrained = _rt_model(systems)
    with torch.no_grad():  # heads that differ (a fresh head is nearly one direction)
        pretrained.net.head[-1].weight.normal_()
    peptides = [parse_proforma(p) for p in _peptides(200, 3)]
    batch = encode_peptides(peptides, PeptideEncoder([], "both"))
    with torch.no_grad():
        old = pretrained.head_outputs(batch).double()
    # the new column: a mix of heads a and c (standardised), on this model's own scale
    target = 30.0 + 10.0 * (0.7 * old[:, 0] - 0.4 * old[:, 2] + 0.2)
    batch["rt"] = target.float()
    checkpoint = {
        "state_dict": pretrained.state_dict(),
        "hyper_parameters": dict(pretrained.hparams),
    }
    model = _rt_model()  # one system (the user's)
    model.load_pretrained(checkpoint)
    assert model._pretrained_head is not None
    model.fold_pretrained_heads([batch])
    with torch.no_grad():
        predicted = model.predict_rt(batch).double()
    assert torch.allclose(predicted, target, atol=0.05)  # before any gradient step
    assert model._pretrained_head is None
