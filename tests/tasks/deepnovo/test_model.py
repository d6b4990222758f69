"""deepnovo models: causal decoding, ion features at hand-computed m/z, weight transfer, and a
tiny tracked run whose decoded peptides all fit their precursors, then `deepms predict`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.chem import PROTON, parse_proforma
from deepms.tasks.deepnovo.data import collate
from deepms.tasks.deepnovo.models import CasanovoModel, DeepNovoModel
from deepms.tasks.deepnovo.vocab import Vocabulary

PREDICTOR = "deepms.tasks.deepnovo.predict.DeNovoPredictor"


def _batch(vocab: Vocabulary) -> dict:
    items = []
    for text, charge in (("PEPTLDEK", 2), ("AC[Carbamidomethyl]DM[Oxidation]K", 2)):
        peptide = parse_proforma(text)
        rng = np.random.default_rng(len(text))
        mz = np.sort(rng.uniform(100, 900, 30))
        items.append(
            {
                "mz": mz,
                "intensity": rng.uniform(0.1, 1, 30),
                "precursor_mz": peptide.precursor_mz(charge),
                "charge": charge,
                "tokens": np.array(vocab.encode(peptide)),
            }
        )
    return collate(items)


def _models(extra=()) -> list:
    vocab = Vocabulary(list(extra)).to_dict()
    torch.manual_seed(0)
    small = {"vocabulary": vocab, "max_length": 12}
    deepnovo = DeepNovoModel(hidden_size=16, embed_dim=8, conv_channels=4, ion_channels=8, **small)
    casanovo = CasanovoModel(dim=16, heads=2, feedforward=32, **small)
    return [deepnovo.eval(), casanovo.eval()]


@pytest.mark.parametrize("index", [0, 1])
def test_decoding_is_causal_and_last_only_matches_teacher_forcing(index: int) -> None:
    model = _models()[index]
    batch = _batch(model.vocab)
    with torch.no_grad():
        full = model(batch)  # (B, L+1, V)
        memory = model.encode(batch)
        rows = torch.arange(2)
        for t in (0, 3, 5):
            prefix = batch["tokens"][:, :t]
            last = model.decode_logits(memory, rows, prefix, last_only=True)[:, -1]
            torch.testing.assert_close(last, full[:, t], rtol=1e-4, atol=1e-4)
        # swapping rows picks the other spectrum's memory
        swapped = model.decode_logits(memory, rows.flip(0), batch["tokens"][:, :2].flip(0))
        torch.testing.assert_close(swapped[:, -1], full[:, 2].flip(0), rtol=1e-4, atol=1e-4)


def test_incremental_lstm_steps_match_full_prefix_recompute() -> None:
    """Beam-style calls (prefixes one token longer each step, rows reordered and repeated) give
    the same logits from the cached LSTM state as from re-running the whole prefix."""
    model = _models()[0]
    batch = _batch(model.vocab)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        cached, fresh = model.encode(batch), model.encode(batch)
        rows = torch.tensor([0, 1])
        prefix = torch.zeros(2, 0, dtype=torch.long)
        for _ in range(5):
            got = model.decode_logits(cached, rows, prefix, last_only=True)
            fresh.pop("lstm_cache", None)  # no parent cached: the whole prefix is re-run
            want = model.decode_logits(fresh, rows, prefix, last_only=True)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            keep = torch.randint(0, len(rows), (len(rows) + 1,), generator=generator)
            tokens = torch.randint(2, model.n_tokens, (len(keep), 1), generator=generator)
            rows, prefix = rows[keep], torch.cat([prefix[keep], tokens], dim=1)
        assert cached["lstm_cache"]["prefix"].shape[1] == 4


def test_ion_cnn_reads_the_b_and_y_ions_of_each_candidate() -> None:
    model = _models()[0]
    vocab = model.vocab
    peptide = parse_proforma("PEK")
    precursor = peptide.precursor_mz(2)
    b1 = 97.052764 + PROTON  # P
    y2 = peptide.monoisotopic_mass - 97.052764 + PROTON  # EK + H2O
    item = {"mz": np.array([b1, y2]), "intensity": np.array([0.5, 1.0])}
    batch = collate([{**item, "precursor_mz": precursor, "charge": 2, "tokens": None}])
    memory = model.encode(batch)
    ions = model._ion_features(memory, torch.tensor([0]), torch.zeros(1, 0, dtype=torch.long), True)
    centre = model.half_window
    p, a = vocab.index["P"], vocab.index["A"]
    assert ions[0, 0, p, 0, centre] == pytest.approx(0.5)  # b+ of candidate P
    assert ions[0, 0, p, 1, centre] == pytest.approx(1.0)  # y+ complement
    assert float(ions[0, 0, a, :2].abs().sum()) == 0.0  # A's ions hit no peak


def test_pretrained_weights_transfer_by_token_across_vocabularies() -> None:
    old = _models()[1]
    new = _models(extra=["Malonyl@K"])[1]
    checkpoint = {"state_dict": old.state_dict(), "hyper_parameters": dict(old.hparams)}
    loaded, fresh = new.load_pretrained(checkpoint)
    assert "embed.weight" in loaded and not fresh
    for token in ("A", "M[UNIMOD:35]", "<eos>"):
        i, j = old.vocab.index[token], new.vocab.index[token]
        assert torch.equal(new.embed.weight[j], old.embed.weight[i])
        assert torch.equal(new.out.bias[j], old.out.bias[i])
    same = _models()[1]
    same.load_pretrained(checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(same.parameters(), old.parameters(), strict=True))


def _mass_fits(sequence: str, precursor_mz: float, charge: int, ppm: float) -> bool:
    observed = (precursor_mz - PROTON) * charge
    return abs(parse_proforma(sequence).monoisotopic_mass - observed) <= observed * ppm * 1e-6


@pytest.mark.slow
def test_tiny_run_decodes_within_tolerance_and_predicts_mztab_and_csv(
    compose_config, mirror, tmp_path
) -> None:
    import yaml
    from mlflow.tracking import MlflowClient
    from pyteomics import mztab

    from deepms.cli import main as deepms
    from deepms.io import read_mgf, write_mgf
    from deepms.tasks.deepnovo.predict import DeNovoPredictor
    from deepms.training.runner import run

    cfg = compose_config("task=deepnovo", "experiment=deepnovo_tiny", "run_name=novo-tiny")
    result = run(cfg)
    for key in ("test_aa_precision", "test_aa_recall", "test_peptide_recall", "test_pc_auc"):
        assert 0.0 <= result.metrics[key] <= 1.0, key
    assert result.metrics["test_n_outside_tolerance"] == 0
    assert result.metrics["test_spectra_per_s"] > 0
    assert 0.0 < result.metrics["test_coverage"] <= 1.0
    logged = MlflowClient(cfg.logger.mlflow.tracking_uri).get_run(result.run_id)
    assert {"test_aa_recall", "val_loss", "val_aa_recall", "test_pc_auc"} <= set(
        logged.data.metrics
    )
    assert "test_peptide_recall_pdeep_massivekb" in logged.data.metrics
    assert logged.data.tags["split"] == "peptide_grouped_80_10_10_seed42"

    # Every decoded test peptide fits its precursor, or the spectrum is unsequenced.
    predictor = DeNovoPredictor.from_checkpoint(result.best_checkpoint)
    stored = yaml.safe_load(yaml.safe_dump(predictor.describe()))  # as the registry keeps it
    predictor.check_description(stored)
    assert stored["vocabulary"][3] == ["C[UNIMOD:4]", pytest.approx(160.03065, abs=1e-5)]
    source = mirror / "deepnovo" / "casanovo_sample_preprocessed_spectra.mgf"
    spectra = list(read_mgf(source))[:12]
    spectra[3].precursor_charge = None  # cannot be decoded: must come back unsequenced
    small = tmp_path / "small.mgf"
    write_mgf(spectra, small)
    table = predictor.predict(next(predictor.read_input(small, 100)))
    assert list(table["title"]) == [s.identifier for s in spectra]
    assert table["sequence"][3] == "" and math.isnan(table["score"][3])
    for row in table[table["sequence"] != ""].itertuples():
        assert _mass_fits(row.sequence, row.precursor_mz, row.charge, 20.0), row
        assert len(row.aa_scores) == len(parse_proforma(row.sequence).sequence)
    assert (table["sequence"] != "").sum() >= 1

    # `deepms predict` to mzTab (pyteomics reads it) and CSV (every spectrum a row).
    for suffix in ("mztab", "csv"):
        out = tmp_path / f"out.{suffix}"
        args = ["predict", result.best_checkpoint, "--input", str(small), "--output", str(out)]
        assert deepms([*args, "--predictor", PREDICTOR, "--no-progress"]) == 0
    psms = mztab.MzTab(str(tmp_path / "out.mztab")).spectrum_match_table
    sequenced = table[table["sequence"] != ""]
    assert len(psms) == len(sequenced)
    assert list(psms["opt_global_cv_MS:1003169_proforma_peptidoform_sequence"]) == list(
        sequenced["sequence"]
    )
    csv = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert len(csv) == len(spectra) and csv["sequence"][3] == ""
    # A 1-beam, 1 ppm search through the CLI options: still nothing outside that tolerance.
    narrow = tmp_path / "narrow.csv"
    args = ["predict", result.best_checkpoint, "--input", str(small), "--output", str(narrow)]
    options = ["--beam-size", "1", "--precursor-tolerance", "1", "--tolerance-unit", "ppm"]
    assert deepms([*args, "--predictor", PREDICTOR, "--no-progress", *options]) == 0
    rows = pd.read_csv(narrow, keep_default_na=False)
    for row in rows[rows["sequence"] != ""].itertuples():
        assert _mass_fits(row.sequence, row.precursor_mz, row.charge, 1.0), row
