"""A trained dia ensemble as a predictor: a new run's peak groups in, scores and q-values out.

``deepms predict models:/dia@champion --input run.osw --output scored.tsv`` reads the whole file
(``.osw`` or PyProphet ``.tsv``/``.txt`` through :func:`deepms.io.openswath.read_peak_groups`;
q-values need every peak group of the file at once, so it is one chunk), standardises the
sub-scores with the training statistics saved in the model, scores each peak group with the mean
logit of the K cross-fitted networks (none of them saw this file) and computes the q-values (TDC
and pi0), PEP and ranks on the file's own decoys: every target and decoy row is written.

``--output scored.osw`` (input an ``.osw``) instead writes the scores into a *copy* of the input
as PyProphet's ``SCORE_MS2`` table (:func:`score_ms2_table`,
:func:`deepms.io.openswath.write_osw_scores`), so PyProphet's export and DIAlignR read deepms's
scores where they read PyProphet's; the input itself is never modified.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from deepms.errors import DeepMSError
from deepms.io.openswath import PeakGroupError
from deepms.metrics.fdr import best_per_group, decoy_pvalues
from deepms.registry.options import BATCH_OPTIONS, Option
from deepms.registry.predictor import BatchPredictor, ModelLoadError
from deepms.tasks.dia.data import standardise
from deepms.tasks.dia.scoring import assess

#: output suffixes that mean "write SCORE_MS2 into a copy of the input .osw"
OSW_SUFFIXES = (".osw", ".sqlite")
#: which q-value goes into SCORE_MS2.QVALUE (``--osw-qvalue``)
OSW_QVALUES = ("tdc", "pi0")


class MissingScoreError(DeepMSError, ValueError):
    """The input lacks sub-scores the model was trained on."""


def is_osw_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an OpenSWATH results file by its suffix."""
    return Path(path).name.lower().endswith(OSW_SUFFIXES)


def score_ms2_table(table: pd.DataFrame, qvalue: str = "tdc") -> pd.DataFrame:
    """PyProphet's SCORE_MS2 rows from a :meth:`DiaPredictor.predict` table.

    PyProphet's MS2 level is the peak group (``group_id``: one precursor in one run): ``rank`` is
    the row's rank in its group, ``pvalue`` the fraction of best decoy peak groups scoring at
    least as high (its empirical null), ``qvalue`` and ``pep`` the peak-group level ones
    (``q_peak_group`` by TDC, deepms's headline, or ``q_pi0_peak_group``, Storey's as PyProphet
    writes; ``qvalue="pi0"``). Every row, decoys included, so the FDR can be checked downstream.
    """
    if qvalue not in OSW_QVALUES:
        raise ValueError(f"qvalue={qvalue!r}: use one of {OSW_QVALUES}")
    best = best_per_group(table, "group_id")
    null = best.loc[best["decoy"].astype(bool), "score"].to_numpy()
    column = "q_peak_group" if qvalue == "tdc" else "q_pi0_peak_group"
    return pd.DataFrame(
        {
            "feature_id": table["feature_id"].astype(str).to_numpy(),
            "score": table["score"].to_numpy(dtype=float),
            "rank": table["rank"].to_numpy(dtype=int),
            "pvalue": decoy_pvalues(table["score"].to_numpy(dtype=float), null),
            "qvalue": table[column].to_numpy(dtype=float),
            "pep": table["pep_peak_group"].to_numpy(dtype=float),
        }
    )


class DiaPredictor(BatchPredictor):
    """A loaded :class:`~deepms.tasks.dia.model.DiaModel` and its scaler."""

    row_independent = False  # a file is predicted as a whole (record_errors.py)

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "group_id": ("string", True),
        "decoy": ("boolean", True),
    }
    model_class: ClassVar[str] = "deepms.tasks.dia.model.DiaModel"
    options: ClassVar[tuple[Option, ...]] = (
        *BATCH_OPTIONS,
        Option("plus_one", bool, False, "TDC q-values with (#decoys + 1) / #targets"),
        Option(
            "osw_qvalue",
            str,
            "tdc",
            "q-value written to an .osw output's SCORE_MS2 (pi0: Storey's, as PyProphet)",
            choices=OSW_QVALUES,
        ),
    )

    def __init__(self, model: Any, batch_size: int = 4096, precision: str = "32") -> None:
        self.model = model.eval()
        hparams = model.hparams
        self.score_columns = [str(c) for c in hparams["score_columns"]]
        self.mean = [float(v) for v in hparams["scaler_mean"]]
        self.std = [float(v) for v in hparams["scaler_std"]]
        self.input_schema = {
            "group_id": ("string", True),
            "decoy": ("boolean", True),
            **{c: ("double", True) for c in self.score_columns},
        }
        self.batch_size, self.precision, self.plus_one = batch_size, "32", False
        self.osw_qvalue = "tdc"
        self._source: Path | None = None  # the input .osw while an .osw output is written
        self.configure(precision=precision)

    def configure(
        self,
        batch_size: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
        plus_one: bool | None = None,
        osw_qvalue: str | None = None,
    ) -> None:
        super().configure(batch_size, precision, threads)
        if plus_one is not None:
            self.plus_one = bool(plus_one)
        if osw_qvalue is not None:
            if osw_qvalue not in OSW_QVALUES:
                raise ValueError(f"osw_qvalue={osw_qvalue!r}: use one of {OSW_QVALUES}")
            self.osw_qvalue = osw_qvalue

    def describe(self) -> dict[str, Any]:
        return {
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "score_columns": self.score_columns,
            "n_networks": len(self.model.nets),
            "n_folds": int(self.model.n_folds),
        }

    def check_description(self, description: dict[str, Any]) -> None:
        stored = description.get("score_columns")
        if stored is not None and list(stored) != self.score_columns:
            raise ModelLoadError("the model's score columns differ from its stored description")

    def input_example(self) -> pd.DataFrame:
        """A target and its decoy at the training means."""
        values = {c: [m, m] for c, m in zip(self.score_columns, self.mean, strict=True)}
        return pd.DataFrame(
            {"group_id": ["1_run0", "DECOY_1_run0"], "decoy": [False, True], **values}
        )

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """The whole peak-group file as one table (q-values need all of it)."""
        from deepms.io.openswath import read_peak_groups

        if options:
            raise ValueError(f"{type(self).__name__}: input options {sorted(options)} unused")

        def one() -> Iterator[pd.DataFrame]:
            yield read_peak_groups(Path(path))

        return one()

    @staticmethod
    def _standard(frame: pd.DataFrame) -> pd.DataFrame:
        """Fill the identification columns a plain table may lack (from group_id)."""
        frame = frame.rename(
            columns={
                c: c.lower() for c in frame.columns if c.lower().startswith(("main_var_", "var_"))
            }
        )
        if "group_id" not in frame or "decoy" not in frame:
            raise MissingScoreError("the input needs group_id and decoy columns")
        out = frame.copy()
        out["decoy"] = out["decoy"].astype(str).str.lower().isin(["1", "true", "1.0"])
        groups = out["group_id"].astype(str)
        if "precursor_id" not in out:
            out["precursor_id"] = groups.str.replace(r"_run\d+$", "", regex=True)
        if "pair_id" not in out:
            out["pair_id"] = out["precursor_id"].astype(str).str.replace("^DECOY_", "", regex=True)
        if "feature_id" not in out:
            out["feature_id"] = np.arange(len(out)).astype(str)
        for column, default in (("run", ""), ("peptide", "")):
            if column not in out:
                out[column] = default
        return out

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Mean logit of the K networks for every row."""
        missing = [c for c in self.score_columns if c not in frame.columns]
        if missing:
            raise MissingScoreError(
                f"the input lacks {len(missing)} sub-score(s) the model uses: {missing[:5]}"
            )
        x = torch.from_numpy(standardise(frame, self.score_columns, self.mean, self.std))
        out = np.zeros(len(frame))
        with self._inference():
            for start in range(0, len(frame), self.batch_size):
                logits = self.model(x[start : start + self.batch_size]).float()
                out[start : start + len(logits)] = logits.mean(-1).numpy()
        return out

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Every row with score, rank, q-values (TDC, pi0) and PEP at three levels."""
        frame = self._standard(frame)
        table, _ = assess(frame, self.scores(frame), plus_one=self.plus_one)
        return table

    def predict_file(
        self,
        input_path: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        **kwargs: Any,
    ) -> dict[str, int]:
        """As the base class; an ``.osw`` output is checked first (before minutes of scoring):
        the input must be an ``.osw`` (the scores go into a copy of it) and a different file."""
        if not is_osw_path(output_path):
            return super().predict_file(input_path, output_path, **kwargs)
        source, output = Path(input_path), Path(output_path)
        if not is_osw_path(source):
            raise PeakGroupError(
                output,
                "output",
                f"an .osw output is a scored copy of an .osw input, but the input {source} is "
                "not an .osw; write a .tsv instead",
            )
        if output.resolve() == source.resolve():
            raise PeakGroupError(
                output,
                "output",
                "the output must differ from the input .osw: the scores go into a copy and "
                "the input is never modified; name another --output",
            )
        self._source = source
        try:
            return super().predict_file(input_path, output_path, **kwargs)
        finally:
            self._source = None

    def write_output(self, tables: Any, path: str | os.PathLike[str]) -> dict[str, int]:
        """``.tsv``/``.csv``/``.parquet`` as the base class; ``.osw``: SCORE_MS2 in a copy of the
        input (:func:`score_ms2_table`, :func:`~deepms.io.openswath.write_osw_scores`)."""
        if not is_osw_path(path):
            return super().write_output(tables, path)
        from deepms.io.openswath import write_osw_scores

        if self._source is None:
            raise PeakGroupError(path, "output", "an .osw output needs the input .osw to copy")
        table = pd.concat(list(tables), ignore_index=True)
        write_osw_scores(self._source, path, score_ms2_table(table, self.osw_qvalue))
        best = table[table["best"] & ~table["decoy"]]
        return {
            "rows": len(table),
            "target_peak_groups_at_1pct": int((best["q_peak_group"] <= 0.01).sum()),
        }
