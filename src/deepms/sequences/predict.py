"""The predictor every sequence task shares: FASTA (or a table with ``sequence``) in, CSV out.

A task subclass names its model class and turns a batch's network output into named columns;
reading, encoding with the checkpoint's own :class:`SequenceEncoder`, length-sorted batching and
writing are common. Rows come back in input order, one per sequence, led by ``id`` and ``length``.
A sequence with letters outside the alphabet's rule is an error naming the row, never a guess.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from deepms.io.atomic import atomic_path
from deepms.io.fasta import read_fasta
from deepms.io.formats import FASTA_SUFFIXES
from deepms.registry.predictor import BatchPredictor, json_safe
from deepms.sequences.encoding import SequenceEncoder, pad_batch


def _is_fasta(path: str | os.PathLike[str]) -> bool:
    return Path(path).name.lower().endswith(FASTA_SUFFIXES)


class SequencePredictor(BatchPredictor):
    """A loaded sequence model behind the task-independent :class:`Predictor` interface."""

    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {
        "sequence": ("string", True),
        "id": ("string", False),
    }
    params: ClassVar[dict[str, Any]] = {}
    #: ``package.module.Class`` of the LightningModule this predictor loads
    model_class: ClassVar[str] = ""
    #: two valid input sequences for the registered model's example
    example_sequences: ClassVar[tuple[str, str]] = (
        "MKTAYIAKQRQISFVKSHFSRQ",
        "MSDNGPQNQRNAPRITFGGP",
    )

    def __init__(self, model: Any, batch_size: int = 64, precision: str = "32") -> None:
        self.model = model.eval()
        self.encoder = SequenceEncoder.from_dict(dict(model.hparams.encoder))
        self.batch_size, self.precision = int(batch_size), "32"
        self.configure(precision=precision)

    def describe(self) -> dict[str, Any]:
        hparams = {k: v for k, v in dict(self.model.hparams).items() if k != "optimizer"}
        return {
            "model_class": self.model_class,
            "encoder": self.encoder.to_dict(),
            "hyperparameters": json_safe(hparams),
            "outputs": list(self.output_columns()),
        }

    def check_description(self, description: dict[str, Any]) -> None:
        from deepms.registry.predictor import ModelLoadError

        stored = description.get("encoder")
        if stored and stored != self.encoder.to_dict():
            raise ModelLoadError(f"stored encoder {stored} differs from the checkpoint's")

    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame({"id": ["example1", "example2"], "sequence": self.example_sequences})

    # --- what a task defines ---------------------------------------------------------------------

    @abstractmethod
    def output_columns(self) -> tuple[str, ...]:
        """Names of the prediction columns, in order."""

    @abstractmethod
    def outputs(self, x: Any, mask: Any) -> dict[str, np.ndarray]:
        """Network output for one encoded batch as named per-row arrays."""

    # --- prediction -------------------------------------------------------------------------------

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input sequence, in input order: ``id``, ``length`` and the outputs."""
        import torch

        if "sequence" not in frame.columns:
            raise ValueError(f"input lacks a 'sequence' column; has {list(frame.columns)}")
        sequences = frame["sequence"].astype(str).tolist()
        ids = (
            frame["id"].astype(str).tolist()
            if "id" in frame.columns
            else list(map(str, frame.index))
        )
        encoded = []
        for row, (ident, sequence) in enumerate(zip(ids, sequences, strict=True)):
            try:
                encoded.append(self.encoder.encode(sequence))
            except ValueError as exc:
                raise ValueError(f"row {row} ({ident}): {exc}") from exc

        def run(rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            x, mask = pad_batch([encoded[r] for r in rows])
            return rows, self.outputs(torch.from_numpy(x), torch.from_numpy(mask))

        parts = self._batched([len(e) for e in encoded], run)
        columns = {
            name: self._in_input_order([(rows, out[name]) for rows, out in parts], len(encoded))
            for name in self.output_columns()
        }
        table = {"id": ids, "length": [len(s) for s in sequences], **columns}
        return pd.DataFrame(table)

    # --- files ------------------------------------------------------------------------------------

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """FASTA (ids from the headers; gz fine), or CSV/TSV/parquet with a ``sequence`` column."""
        if options:
            raise ValueError(f"{type(self).__name__}: input options {sorted(options)} unused")
        if not _is_fasta(path):
            return super().read_input(path, chunk_size)
        return self._fasta_chunks(path, chunk_size)

    def _fasta_chunks(
        self, path: str | os.PathLike[str], chunk_size: int
    ) -> Iterator[pd.DataFrame]:
        rows: list[tuple[str, str]] = []
        # a record the alphabet refuses is a record error (named in <output>.rejected.tsv)
        for record in read_fasta(path, alphabet=self.encoder.alphabet, on_error=self.reject_record):
            rows.append((record.identifier, record.sequence))
            if len(rows) >= chunk_size:
                yield pd.DataFrame(rows, columns=["id", "sequence"])
                rows = []
        if rows:
            yield pd.DataFrame(rows, columns=["id", "sequence"])

    def write_output(self, tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]):
        """CSV (TSV for ``.tsv``), written to a ``.part`` file and renamed when complete."""
        path = Path(path)
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        rows = 0
        with atomic_path(path) as partial, open(partial, "w", encoding="utf-8", newline="") as out:
            for index, table in enumerate(tables):
                table.to_csv(out, sep=sep, index=False, header=index == 0)
                rows += len(table)
            if rows == 0:
                out.write(sep.join(["id", "length", *self.output_columns()]) + "\n")
        return {"sequences": rows}
