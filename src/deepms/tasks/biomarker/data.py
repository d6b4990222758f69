"""The biomarker datamodule: a cohort matrix joined to a sample table, split by sample.

``sources`` are matrices (``matrix_table``, ``maxquant_protein_groups``, ``diann_pg_matrix``;
several are stacked by feature name), ``samples`` is one source entry of format ``sample_table``
with the ``label`` column (``positive`` is the class scored 1) and any ``covariates`` to add as
features. A sample is a patient: splits are by sample, stratified by label (``cv`` folds or the
``split`` fractions per class), and ``group_columns`` offer e.g. ``site`` for leave-one-site-out.

Leakage guard: columns that define the label (its measurements and diagnoses: ``label_defining``,
matched on lower-case letters and digits as a prefix, or anywhere for entries of 6+ characters)
are refused as covariates and as matrix features unless listed in ``allow_covariates``.
After the split a :class:`~deepms.tasks.biomarker.preprocess.Preprocessor` is fitted on the
training rows only and applied to every part.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepms.datasets.sources import SourceSpec, open_source
from deepms.datasets.splits import SPLIT_NAMES, grouped_split
from deepms.errors import DataFormatError, DeepMSError
from deepms.io.matrix import SampleInfo, SampleVector, stack_vectors
from deepms.tasks.biomarker.preprocess import Preprocessor
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)

#: measurements and diagnoses that define an Alzheimer label (data configs refine the list)
LABEL_DEFINING = (
    "t-tau", "tau", "p-tau", "abeta", "ab_42", "ab_40", "amyloid", "mmse", "diagnosis",
    "classification",
)  # fmt: skip


class BiomarkerConfigError(DeepMSError, ValueError):
    """The data config asks for something the cohort cannot give (or must not: leakage)."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def label_defining(column: str, patterns: Sequence[str]) -> str | None:
    """The pattern that marks ``column`` as label-defining, or None."""
    key = _key(column)
    for pattern in patterns:
        p = _key(pattern)
        if p and (key.startswith(p) or (len(p) >= 6 and p in key)):
            return pattern
    return None


class CohortDataset(Dataset):
    """Preprocessed samples of one part; ``lengths`` (all 1) for the bucketed loader."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ids: Sequence[str]) -> None:
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self.y = np.asarray(y, dtype=np.int64)
        self.ids = list(ids)
        self.lengths = [1] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.x[index], "label": float(self.y[index]), "id": self.ids[index]}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """{"x": [B, F], "label": [B], "ids": list}."""
    return {
        "x": torch.stack([it["x"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.float32),
        "ids": [it["id"] for it in items],
    }


def _named(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_value(cell: str, value: Any) -> bool:
    """``cell == value`` as text or as numbers (``1`` in YAML matches ``1.0`` in a file)."""
    if cell == str(value):
        return True
    try:
        return float(cell) == float(value)
    except (TypeError, ValueError):
        return False


SAMPLE_TABLE = "sample_table"


class BiomarkerDataModule(TaskDataModule):
    """Matrix + sample table -> stratified, leakage-guarded, in-fold preprocessed parts."""

    split_kind = "sample_stratified"
    collate_fn = staticmethod(collate)

    def __init__(
        self,
        label: str,
        positive: Any,
        samples: Mapping[str, Any] | SourceSpec | None = None,
        covariates: Sequence[str] = (),
        allow_covariates: Sequence[str] = (),
        label_defining: Sequence[str] = LABEL_DEFINING,
        group_columns: Mapping[str, Any] | None = None,
        preprocess: Mapping[str, Any] | None = None,
        **common: Any,
    ) -> None:
        """``common``: the base's settings, ``sources`` (the matrix) among them. ``samples``: the
        sample table (label, covariates, groups); or give it in ``sources`` with ``format:
        sample_table`` (one override then replaces a cohort's files).
        ``group_columns``: name -> a sample-table column, or ``{one_hot: [cols], none: X}``
        (the value is the column set to 1, or ``none`` where no column is set)."""
        super().__init__(**common)
        tables = [s for s in self.sources if s.format == SAMPLE_TABLE]
        if samples is not None:
            tables.insert(0, SourceSpec.from_config(samples))
        if not [s for s in self.sources if s.format != SAMPLE_TABLE]:
            raise BiomarkerConfigError("biomarker: data.sources names no matrix")
        if len(tables) != 1:
            raise BiomarkerConfigError(
                f"biomarker: give one sample table (data.samples, or a data.sources entry with "
                f"format: {SAMPLE_TABLE}); found {len(tables)}"
            )
        self.samples_spec = tables[0]
        self.label, self.positive = str(label), positive
        self.covariates = [str(c) for c in covariates or ()]
        self.allow_covariates = [str(c) for c in allow_covariates or ()]
        self.label_defining = [str(p) for p in label_defining or ()]
        self.group_spec = dict(group_columns or {})
        self.preprocess = dict(preprocess or {})
        self.refused = self._refused(self.covariates)
        if self.refused:
            raise BiomarkerConfigError(self._refusal(self.refused, "covariates"))
        self.preprocessor: Preprocessor | None = None
        self.feature_names: list[str] = []
        self.classes: list[str] = []
        self.covariate_names: list[str] = []
        self.group_values: dict[str, dict[str, str]] = {}
        self._stratum: dict[str, int] = {}

    # --- leakage guard ---------------------------------------------------------------------------

    def _refused(self, columns: Sequence[str]) -> dict[str, str]:
        """Columns that define the label (the label itself included) and are not allowed."""
        refused = {}
        for column in columns:
            if column in self.allow_covariates:
                continue
            pattern = self.label if column == self.label else None
            pattern = pattern or label_defining(column, self.label_defining)
            if pattern:
                refused[column] = pattern
        return refused

    def _refusal(self, refused: Mapping[str, str], where: str) -> str:
        named = ", ".join(f"{c!r} (matches {p!r})" for c, p in refused.items())
        return (
            f"biomarker: refused as {where}: {named}. These columns define the label "
            f"{self.label!r} (its measurements or diagnoses), so a model fed them scores what "
            "the label already says; list them in data.allow_covariates to use them anyway"
        )

    # --- reading and joining ---------------------------------------------------------------------

    def _read_matrices(self, dropped: Counter) -> tuple[list[SampleVector], list[int]]:
        vectors: list[SampleVector] = []
        source_index: list[int] = []
        for index, opened in self.open_sources():
            if opened.format.name == SAMPLE_TABLE:  # read by _read_samples
                continue
            if opened.format.record != "SampleVector":
                raise BiomarkerConfigError(
                    f"biomarker source {opened.spec.describe()}: use a matrix format "
                    "(matrix_table, maxquant_protein_groups, diann_pg_matrix)"
                )
            found = list(opened.records(self.on_error, dropped=dropped, **opened.spec.options))
            vectors += found
            source_index += [index] * len(found)
        return vectors, source_index

    def _read_samples(self) -> dict[str, SampleInfo]:
        opened = open_source(self.samples_spec, self.mirror, self.cache_dir)
        if opened.format.record != "SampleInfo":
            raise BiomarkerConfigError(
                f"data.samples {self.samples_spec.describe()}: use sample_table"
            )
        self._lineage.add_files(f"{opened.name}:samples", opened.checksums)
        rows = {r.id: r for r in opened.records(self.on_error, **opened.spec.options)}
        first = next(iter(rows.values()), None)
        if first is None:
            raise DataFormatError(opened.paths[0], "table", "no samples")
        needed = [self.label, *self.covariates]
        missing = [c for c in needed if c not in first.fields]
        for spec in self.group_spec.values():
            cols = spec.get("one_hot", []) if isinstance(spec, Mapping) else [spec]
            missing += [c for c in cols if c not in first.fields]
        if missing:
            raise DataFormatError(
                first.path, "header", f"no column(s) {missing}; columns: {list(first.fields)}"
            )
        return rows

    @staticmethod
    def _check_ids(ids: Sequence[str], rows: Mapping[str, SampleInfo]) -> None:
        """Matrix and sample table must name the same samples (both ways)."""
        only_matrix = [i for i in ids if i not in rows]
        only_table = sorted(set(rows) - set(ids))
        if only_matrix or only_table:
            raise BiomarkerConfigError(
                f"biomarker: sample ids differ between matrix and sample table: in the matrix "
                f"only: [{_named(only_matrix)}]; in the sample table only: [{_named(only_table)}]"
            )

    def _labels(self, rows: dict[str, SampleInfo], ids: Sequence[str]) -> np.ndarray:
        cells = [rows[i].fields[self.label] for i in ids]
        empty = [i for i, c in zip(ids, cells, strict=True) if c == ""]
        if empty:
            raise BiomarkerConfigError(
                f"biomarker: no {self.label!r} for samples [{_named(empty)}]"
            )
        y = np.array([_is_value(c, self.positive) for c in cells], dtype=np.int64)
        others = sorted({c for c, v in zip(cells, y, strict=True) if not v})
        if y.sum() == 0 or y.sum() == len(y):
            found = sorted(set(cells))
            raise BiomarkerConfigError(
                f"biomarker: label column {self.label!r} has one class ({found}) with "
                f"positive={self.positive!r}; a classifier needs both classes"
            )
        negative = others[0] if len(others) == 1 else f"not {self.positive}"
        self.classes = [negative, str(self.positive)]
        return y

    def _covariates(self, rows: dict[str, SampleInfo], ids: Sequence[str]) -> np.ndarray:
        """Numeric covariates as they are; a text covariate one-hot per value (named col=value)."""
        blocks, names = [], []
        for column in self.covariates:
            cells = [rows[i].fields[column] for i in ids]
            try:
                values = np.array([float(c) if c != "" else np.nan for c in cells])
                blocks.append(values[:, None])
                names.append(column)
            except ValueError:
                mixed = [(i, c) for i, c in zip(ids, cells, strict=True) if _is_number(c)]
                if mixed:  # numbers and text in one column: a typo, not categories
                    raise BiomarkerConfigError(
                        f"biomarker: covariate {column!r} mixes numbers (sample "
                        f"{mixed[0][0]!r}: {mixed[0][1]!r}) and text; fix the sample table"
                    ) from None
                levels = sorted({c for c in cells if c})
                blocks.append(np.array([[c == lv for lv in levels] for c in cells], dtype=float))
                names += [f"{column}={lv}" for lv in levels]
        self.covariate_names = names
        return np.column_stack(blocks) if blocks else np.zeros((len(ids), 0))

    def _groups(self, rows: dict[str, SampleInfo], ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, spec in self.group_spec.items():
            if not isinstance(spec, Mapping):
                out[name] = [rows[i].fields[str(spec)] for i in ids]
                continue
            cols, none = list(spec.get("one_hot", [])), str(spec.get("none", "none"))
            values = []
            for i in ids:
                hot = [c for c in cols if _is_value(rows[i].fields[c], 1)]
                if len(hot) > 1:
                    raise DataFormatError(
                        rows[i].path, f"line {rows[i].line}", f"{name}: {hot} all set"
                    )
                values.append(hot[0] if hot else none)
            out[name] = values
        return out

    # --- the contract ----------------------------------------------------------------------------

    def split_labels(
        self, groups: Sequence[Hashable], fractions: Sequence[float], seed: int
    ) -> np.ndarray:
        """Fractions met per class (stratified), each sample its own group."""
        labels = np.empty(len(groups), dtype=object)
        strata = np.array([self._stratum.get(str(g), 0) for g in groups])
        for value in np.unique(strata):
            rows = np.flatnonzero(strata == value)
            labels[rows] = grouped_split([groups[i] for i in rows], fractions, seed=seed)
        return labels

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage("+".join(dict.fromkeys(self.source_names)))
        dropped: Counter = Counter()
        vectors, source_index = self._read_matrices(dropped)
        rows = self._read_samples()
        X, ids, names = stack_vectors(vectors)
        self._check_ids(ids, rows)
        refused = self._refused(names)
        if refused:
            raise BiomarkerConfigError(self._refusal(refused, "matrix features"))
        first = rows[ids[0]]
        y = self._labels(rows, ids)
        covariates = self._covariates(rows, ids)
        X, names = np.hstack([X, covariates]), names + self.covariate_names
        groups = self._groups(rows, ids)
        self._stratum = dict(zip(ids, y.tolist(), strict=True))
        parts = self.assign_parts(ids, source_index, strata=y, group_columns=groups)
        train = parts == "train"
        if not train.any():
            raise BiomarkerConfigError("biomarker: no training samples after splitting")
        settings = {"seed": self.split_seed, **self.preprocess}
        self.preprocessor = Preprocessor(**settings, no_log=self.covariate_names)
        self.preprocessor.fit(X[train], y[train], names)
        self.feature_names = self.preprocessor.output_names
        part_names = list(dict.fromkeys([*SPLIT_NAMES, *(p for p in parts if p is not None)]))
        self.test_parts = tuple(p for p in part_names if p not in ("train", "val"))
        for part in part_names:
            mask = parts == part
            x = self.preprocessor.transform(X[mask])
            self.datasets[part] = CohortDataset(
                x, y[mask], [i for i, m in zip(ids, mask, strict=True) if m]
            )
        self.group_values = {k: dict(zip(ids, v, strict=True)) for k, v in groups.items()}
        lineage.n_samples = {k: len(v) for k, v in self.datasets.items()}
        lineage.count_dropped(dropped)
        lineage.extras.update(
            label=self.label,
            classes=self.classes,
            class_counts={
                k: {c: int((v.y == j).sum()) for j, c in enumerate(self.classes)}
                for k, v in self.datasets.items()
            },
            n_features_read=len(names),
            n_features_after_missing_filter=len(names) - self.preprocessor.n_missing_filtered,
            n_features=len(self.feature_names),
            covariates=self.covariate_names,
            refused_covariates=sorted(set(self._refused(list(first.fields))) - {self.label}),
            allowed_label_defining=self.allow_covariates,
            preprocess={k: dict(v) if isinstance(v, Mapping) else v for k, v in settings.items()},
        )
        one_class = [p for p, d in self.datasets.items() if len(d) and len(set(d.y)) < 2]
        if one_class:  # e.g. Bader's Kiel site: controls only, so no ROC-AUC on that fold
            log.warning("biomarker: parts %s hold one class only", one_class)
        lineage.extras["one_class_parts"] = one_class
        log.info("biomarker data: %s samples, %d features", lineage.n_samples, len(names))

    def matrix(self, part: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(X float32 [n, F] preprocessed, y int [n], ids) of a part, for the baselines."""
        data = self.datasets[part]
        return data.x.numpy(), data.y.copy(), list(data.ids)

    def model_kwargs(self) -> dict[str, Any]:
        """Sizes, names and the fitted in-fold preprocessing (saved with the model)."""
        if self.preprocessor is None:
            raise RuntimeError("BiomarkerDataModule.model_kwargs before setup()")
        return {
            "n_features": len(self.feature_names),
            "feature_names": list(self.feature_names),
            "preprocessing": self.preprocessor.to_dict(),
            "classes": list(self.classes),
            "label": self.label,
        }
