"""The biomarker datamodule: joins, leakage guard, stratified splits, in-fold preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from deepms.errors import DataFormatError
from deepms.tasks.biomarker.data import BiomarkerConfigError, BiomarkerDataModule, collate

ROOT = Path(__file__).resolve().parents[3]
SITES = ["Berlin", "Kiel", "Sweden"]


def _cohort(tmp_path: Path, n: int = 30, planted: dict[str, float] | None = None) -> dict:
    """n samples x 4 proteins (P2 missing in every third sample), alternating labels, a site
    column as one-hot (Berlin = none set), age and a label-defining p-tau column."""
    rng = np.random.default_rng(0)
    values = np.exp(rng.normal(3, 1, size=(n, 4)))
    lines = ["Sample ID,P1,P2,P3,P4" + (",planted" if planted is not None else "")]
    table = ["Sample ID,AD,Kiel,Sweden,age,p-tau,APOE"]
    for i in range(n):
        sid = f"S{i:02d}"
        cells = [f"{v:.4f}" for v in values[i]]
        if i % 3 == 0:
            cells[1] = ""
        if planted is not None:
            cells.append(str(planted[sid]))
        lines.append(",".join([sid, *cells]))
        site = SITES[i % 3]
        table.append(
            f"{sid},{i % 2},{int(site == 'Kiel')},{int(site == 'Sweden')},{60 + i},{i * 3},"
            f"{'E3E4' if i % 4 else 'E3E3'}"
        )
    (tmp_path / "matrix.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "samples.csv").write_text("\n".join(table) + "\n")
    return {
        "sources": [{"path": str(tmp_path / "matrix.csv"), "format": "matrix_table"}],
        "samples": {"path": str(tmp_path / "samples.csv"), "format": "sample_table"},
        "label": "AD",
        "positive": 1,
        "group_columns": {"site": {"one_hot": ["Kiel", "Sweden"], "none": "Berlin"}},
        "preprocess": {"log2": True, "max_missing": 0.5, "impute": "min_half", "scale": True},
        "split": {"fractions": [0.6, 0.2, 0.2], "seed": 3},
    }


def _setup(**config: Any) -> BiomarkerDataModule:
    dm = BiomarkerDataModule(**config)
    dm.setup()
    return dm


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_parts_are_stratified_items_and_batches_follow_the_contract(tmp_path: Path) -> None:
    dm = _setup(**_cohort(tmp_path))
    sizes = {part: len(dm.datasets[part]) for part in ("train", "val", "test")}
    assert sum(sizes.values()) == 30
    ids = [set(dm.datasets[p].ids) for p in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for part in ("train", "val", "test"):  # 15 / 15 classes split the same way in each class
        y = dm.datasets[part].y
        assert abs(int(y.sum()) - int((1 - y).sum())) <= 3
    item = dm.datasets["train"][0]
    assert str(item["x"].dtype) == "torch.float32" and item["x"].shape == (4,)
    assert item["label"] in (0.0, 1.0) and item["id"].startswith("S")
    batch = collate([dm.datasets["test"][0], dm.datasets["test"][1]])
    assert batch["x"].shape == (2, 4) and batch["label"].shape == (2,) and len(batch["ids"]) == 2
    X, y, ids_test = dm.matrix("test")
    assert (
        X.shape == (sizes["test"], 4)
        and y.dtype.kind == "i"
        and ids_test == dm.datasets["test"].ids
    )
    kwargs = dm.model_kwargs()
    assert kwargs["n_features"] == 4 and kwargs["feature_names"] == ["P1", "P2", "P3", "P4"]
    assert kwargs["classes"] == ["0", "1"] and kwargs["label"] == "AD"
    assert dm.lineage().extras["class_counts"]["train"]["1"] == int(dm.datasets["train"].y.sum())
    assert dm.lineage().extras["refused_covariates"] == ["p-tau"]
    assert "samples.csv" in str(dm.lineage().datasets)


def test_fold_imputation_and_scaling_come_from_its_training_rows(tmp_path: Path) -> None:
    config = _cohort(tmp_path)
    dm = _setup(**config, cv={"scheme": "stratified_kfold", "n_splits": 3, "fold": 2})
    train_ids = set(dm.datasets["train"].ids)
    raw = pd.read_csv(tmp_path / "matrix.csv", index_col=0)
    every_row = np.log2(raw.to_numpy())
    logged = every_row[raw.index.isin(train_ids)]
    by_hand = np.nanmin(logged, axis=0) - 1  # min/2 on the linear scale
    pre = dm.model_kwargs()["preprocessing"]
    np.testing.assert_allclose(pre["fill"], by_hand)
    filled = np.where(np.isnan(logged), by_hand, logged)
    np.testing.assert_allclose(pre["mean"], filled.mean(axis=0))
    assert not np.allclose(pre["fill"], np.nanmin(every_row, axis=0) - 1)  # the test can fail


def test_planted_label_on_test_rows_only_is_not_learned(tmp_path: Path) -> None:
    config = _cohort(tmp_path)
    cv = {"scheme": "stratified_kfold", "n_splits": 3, "fold": 0}
    first = _setup(**config, cv=cv)
    test_ids = dict(zip(first.datasets["test"].ids, first.datasets["test"].y, strict=True))
    planted = {f"S{i:02d}": float(test_ids.get(f"S{i:02d}", 0)) * 100 + 1 for i in range(30)}
    config = _cohort(tmp_path, planted=planted)
    config["preprocess"]["select"] = {"method": "univariate", "k": 2}
    dm = _setup(**config, cv=cv)
    assert dm.datasets["test"].ids == first.datasets["test"].ids  # the same fold
    pre = dm.model_kwargs()["preprocessing"]
    assert "planted" not in dm.feature_names
    assert pre["fill"][-1] == 0.0 - 1  # log2(1) - 1: the training constant
    assert pre["mean"][-1] == 0.0 and pre["std"][-1] == 1.0


def test_covariates_numeric_and_one_hot_not_logged(tmp_path: Path) -> None:
    dm = _setup(**_cohort(tmp_path), covariates=["age", "APOE"])
    assert dm.covariate_names == ["age", "APOE=E3E3", "APOE=E3E4"]
    pre = dm.preprocessor
    age = pre.input_names.index("age")
    train_ids = dm.datasets["train"].ids
    ages = np.array([60 + int(i[1:]) for i in train_ids], dtype=float)
    assert pre.mean[list(pre.kept).index(age)] == pytest.approx(ages.mean())  # linear, not log2


def test_site_groups_for_leave_one_site_out(tmp_path: Path) -> None:
    cv = {"scheme": "leave_one_group_out", "group_by": "site", "fold": 1}  # sorted: Kiel
    dm = _setup(**_cohort(tmp_path), cv=cv)
    assert dm.cv_folds == 3
    assert {dm.group_values["site"][i] for i in dm.datasets["test"].ids} == {"Kiel"}
    assert "test" not in dm.lineage().extras["one_class_parts"]  # Kiel here has both classes
    assert dm.group_values["site"]["S00"] == "Berlin"  # no one-hot column set


def _bad(tmp_path: Path, matrix: str | None = None, samples: str | None = None) -> dict:
    config = _cohort(tmp_path)
    if matrix is not None:
        (tmp_path / "matrix.csv").write_text(matrix)
    if samples is not None:
        (tmp_path / "samples.csv").write_text(samples)
    return config


MATRIX = "Sample ID,P1\na,1\nb,2\nc,3\n"
SAMPLES = "Sample ID,AD,p-tau\na,1,5\nb,0,6\nc,1,7\n"


@pytest.mark.parametrize(
    ("matrix", "samples", "extra", "error", "message"),
    [
        ("Sample ID,P1\na,1\nb,2\na,3\n", SAMPLES, {}, DataFormatError, "duplicate sample id 'a'"),
        (MATRIX, "Sample ID,AD\na,1\nb,0\nb,1\n", {}, DataFormatError, "duplicate sample id 'b'"),
        ("Sample ID,P1\na,1\nb,x2\nc,3\n", SAMPLES, {}, DataFormatError, "non-numeric cell 'x2'"),
        (MATRIX, "Sample ID,AD\na,1\nb,1\nc,1\n", {}, BiomarkerConfigError, "one class"),
        (MATRIX + "d,4\n", SAMPLES, {}, BiomarkerConfigError, r"matrix only: \['d'\]"),
        (MATRIX, SAMPLES + "e,0,1\n", {}, BiomarkerConfigError, r"sample table only: \['e'\]"),
        (MATRIX, SAMPLES, {"covariates": ["age"]}, DataFormatError, r"no column\(s\) \['age'\]"),
        ("Sample ID,P1,p-tau\na,1,2\nb,2,3\nc,3,4\n", SAMPLES, {}, BiomarkerConfigError,
         "refused as matrix features: 'p-tau'"),
    ],
)  # fmt: skip
def test_bad_inputs_are_named_and_nothing_is_written(
    tmp_path: Path, matrix: str, samples: str, extra: dict, error: type, message: str
) -> None:
    config = {**_bad(tmp_path, matrix, samples), **extra, "group_columns": {}}
    before = _files(tmp_path)
    with pytest.raises(error, match=message):
        _setup(**config)
    assert _files(tmp_path) == before


def test_label_defining_covariate_is_refused_unless_allowed(tmp_path: Path) -> None:
    config = _cohort(tmp_path)
    with pytest.raises(BiomarkerConfigError, match=r"'p-tau' .*define the label.*allow_covariates"):
        BiomarkerDataModule(**config, covariates=["age", "p-tau"])
    with pytest.raises(BiomarkerConfigError, match="'AD'"):
        BiomarkerDataModule(**config, covariates=["AD"], allow_covariates=["p-tau"])
    dm = _setup(**config, covariates=["p-tau"], allow_covariates=["p-tau"])
    assert dm.feature_names[-1] == "p-tau"


def _config(name: str, mirror: Path) -> dict:
    config = yaml.safe_load((ROOT / "conf" / "data" / name).read_text())
    config.pop("_target_")
    return {**config, "mirror": str(mirror), "cache_dir": None, "split": {"seed": 0}}


def test_bader_cohort_stratified_folds_are_disjoint_and_stratified(mirror: Path) -> None:
    config = _config("biomarker.yaml", mirror)
    tests: list[set[str]] = []
    for fold in range(5):
        dm = _setup(**config, cv={"scheme": "stratified_kfold", "n_splits": 5, "fold": fold})
        counts = dm.lineage().extras["class_counts"]
        assert sum(c["1"] for c in counts.values()) == 88
        assert sum(c["0"] for c in counts.values()) == 122
        assert counts["test"]["1"] in (17, 18) and counts["test"]["0"] in (24, 25)
        parts = [set(dm.datasets[p].ids) for p in ("train", "val", "test")]
        assert sum(map(len, parts)) == 210 and len(set.union(*parts)) == 210
        tests.append(parts[2])
    assert len(set.union(*tests)) == 210 and sum(map(len, tests)) == 210
    sites = dm.group_values["site"]
    assert {s: list(sites.values()).count(s) for s in set(sites.values())} == {
        "Berlin": 96,
        "Sweden": 60,
        "Magdeburg": 38,
        "Kiel": 16,
    }


def test_craig_schapiro_cohort_and_its_guard(mirror: Path) -> None:
    config = _config("biomarker_craig_schapiro.yaml", mirror)
    dm = _setup(**config)
    counts = dm.lineage().extras["class_counts"]
    assert sum(c["Impaired"] for c in counts.values()) == 91
    assert sum(c["Control"] for c in counts.values()) == 242
    assert dm.model_kwargs()["n_features"] == 124
    with pytest.raises(BiomarkerConfigError, match="'tau'"):
        BiomarkerDataModule(**{**config, "covariates": ["male", "tau"]})


def test_bader_leave_kiel_out_has_a_one_class_test_part(mirror: Path) -> None:
    config = _config("biomarker.yaml", mirror)
    dm = _setup(**config, cv={"scheme": "leave_one_group_out", "group_by": "site", "fold": 1})
    assert dm.cv_folds == 4
    assert dm.lineage().extras["class_counts"]["test"] == {"0": 16, "1": 0}  # Kiel: controls
    assert dm.lineage().extras["one_class_parts"] == ["test"]


def test_covariate_mixing_numbers_and_text_is_refused(tmp_path: Path) -> None:
    samples = "Sample ID,AD,age\na,1,70\nb,0,old\nc,1,80\n"
    config = {**_bad(tmp_path, MATRIX, samples), "group_columns": {}, "covariates": ["age"]}
    with pytest.raises(BiomarkerConfigError, match=r"covariate 'age' mixes numbers \(sample 'a'"):
        _setup(**config)


def test_the_sample_table_may_be_a_source_and_there_is_exactly_one(tmp_path: Path) -> None:
    config = _cohort(tmp_path)
    table = config.pop("samples")
    inline = _setup(**{**config, "sources": [*config["sources"], table]})
    separate = _setup(**config, samples=table)
    assert inline.classes == separate.classes
    assert np.array_equal(inline.matrix("test")[0], separate.matrix("test")[0])
    assert any(k.endswith(":samples") for k in inline.lineage().datasets)  # its sha256 recorded
    with pytest.raises(BiomarkerConfigError, match="one sample table"):
        BiomarkerDataModule(**config)  # none
    with pytest.raises(BiomarkerConfigError, match="found 2"):
        BiomarkerDataModule(**{**config, "sources": [*config["sources"], table]}, samples=table)
    with pytest.raises(BiomarkerConfigError, match="names no matrix"):
        BiomarkerDataModule(**{**config, "sources": [table]})
