"""`deepms predict` is task-blind: a model's predictor declares its options, the CLI lists them
(`deepms predict MODEL --help`) and parses the existing command lines into the same values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepms.cli import _predict_parser, main
from deepms.registry.reference import PREDICTOR_KEY
from deepms.tasks.deepnovo.models import DeepNovoModel
from deepms.tasks.deepnovo.predict import DeNovoPredictor
from deepms.tasks.deepnovo.vocab import Vocabulary
from deepms.tasks.pdeep.predict import PDeepPredictor
from tests.tasks.pdeep.test_predict import PREDICTOR, save_checkpoint, tiny_model

DENOVO = "deepms.tasks.deepnovo.predict.DeNovoPredictor"


def deepnovo_checkpoint(path: Path) -> Path:
    """A tiny DeepNovo checkpoint that records its predictor (no --predictor needed)."""
    torch.manual_seed(0)
    vocab = Vocabulary([]).to_dict()
    model = DeepNovoModel(
        vocab, hidden_size=16, embed_dim=8, conv_channels=4, ion_channels=8, max_length=12
    )
    state = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    state[PREDICTOR_KEY] = DENOVO
    torch.save(state, path)
    return path


def help_text(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as done:
        main(["predict", *args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_lists_the_pdeep_predictors_options(tmp_path: Path, capsys) -> None:
    ckpt = save_checkpoint(tiny_model(), tmp_path / "pdeep.ckpt")
    text = help_text(capsys, str(ckpt), "--predictor", PREDICTOR)
    assert "PDeepPredictor options:" in text and "FASTA digestion (pyteomics):" in text
    for flag in ("--min-intensity", "--collision-energy", "--rt-model", "--workers", "--charges"):
        assert flag in text
    assert "rows per network batch (default: 256)" in text
    assert "--beam-size" not in text and "--tolerance-unit" not in text


def test_help_lists_the_deepnovo_predictors_options(tmp_path: Path, capsys) -> None:
    ckpt = deepnovo_checkpoint(tmp_path / "denovo.ckpt")
    text = help_text(capsys, str(ckpt))  # the predictor recorded in the checkpoint
    assert "DeNovoPredictor options:" in text
    for flag in ("--beam-size", "--precursor-tolerance", "--tolerance-unit {ppm,Da}"):
        assert flag in text
    assert "--min-intensity" not in text and "--enzyme" not in text
    assert "--input" in help_text(capsys)  # without a model: the common options only


def test_unknown_option_is_a_clear_error(tmp_path: Path, capsys) -> None:
    ckpt = deepnovo_checkpoint(tmp_path / "denovo.ckpt")
    args = ["predict", str(ckpt), "--input", "in.mgf", "--output", "out.mztab"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--min-intensity", "0.1"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --min-intensity 0.1 (DeNovoPredictor takes" in err
    assert "--beam-size" in err
    with pytest.raises(SystemExit):
        main([*args, "--tolerance-unit", "mmu"])
    assert "invalid choice: 'mmu'" in capsys.readouterr().err


def test_existing_command_lines_parse_to_the_same_values() -> None:
    pdeep = _predict_parser(PDeepPredictor).parse_args(
        [
            *("m.ckpt", "--input", "p.fasta", "--output", "lib.tsv", "--charges", "2-3"),
            *("--fixed-mods", "none", "--var-mods", "Oxidation@M,Acetyl@N-term"),
            *("--rt-model", "models:/deeprt@champion", "--collision-energy", "27"),
            *("--min-intensity", "0.05", "--missed-cleavages", "0", "--precision", "bf16"),
        ]
    )
    assert pdeep.charges == (2, 3) and pdeep.fixed_mods == ()
    assert pdeep.var_mods == ("Oxidation@M", "Acetyl@N-term")
    assert pdeep.rt_model == "models:/deeprt@champion" and pdeep.collision_energy == 27.0
    assert pdeep.min_intensity == 0.05 and pdeep.missed_cleavages == 0
    assert pdeep.precision == "bf16" and pdeep.batch_size is None  # unset: predictor's default
    novo = _predict_parser(DeNovoPredictor).parse_args(
        [
            *("m", "--input", "s.mgf", "--output", "o.csv", "--beam-size", "2"),
            *("--precursor-tolerance", "50", "--tolerance-unit", "ppm"),
        ]
    )
    assert (novo.beam_size, novo.precursor_tolerance, novo.tolerance_unit) == (2, 50.0, "ppm")
    assert _predict_parser(PDeepPredictor).parse_args(
        ["m", "--input", "a", "--output", "b", "--charges", "1,2,4"]
    ).charges == (1, 2, 4)
