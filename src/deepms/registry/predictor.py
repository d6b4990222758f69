"""The task-independent face of a trained model: a predictor class per task, found by class path.

Each task's ``tasks/<task>/predict.py`` defines a :class:`Predictor`; the task config names it
(``task.predictor``), and registered models carry that name, so ``deepms predict``, the registry and
the MLflow pyfunc flavour never branch on task names. A predictor maps a DataFrame of inputs to a
DataFrame of outputs; files are streamed through it chunk by chunk. It declares its command-line
options (:attr:`Predictor.options`, see :mod:`deepms.registry.options`) and its default model class;
checkpoints load through :mod:`deepms.registry.reference`. Network predictors share the
length-sorted batching (``Predictor._batched``) and :class:`BatchPredictor`'s run-time options.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from deepms.errors import DeepMSError
from deepms.registry.options import BATCH_OPTIONS, PRECISIONS, Option

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

T = TypeVar("T")


class ModelLoadError(DeepMSError):
    """A model artifact is missing, corrupt, or does not fit the code that should load it."""


def load_class(path: str) -> type[Predictor]:
    """Import ``package.module.Class`` and check that it is a :class:`Predictor`."""
    module_name, _, name = str(path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelLoadError(f"predictor {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Predictor)):
        raise ModelLoadError(f"{path!r} is not a deepms Predictor class")
    return cls


def json_safe(value: Any) -> Any:
    """A JSON/YAML-safe copy of hyperparameters (tuples to lists, numpy scalars to Python)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def modification_entries(vocabulary: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Unimod accession and mass of each ``Name@site`` of an encoder's modification vocabulary.

    Stored with a registered model, so a changed Unimod table is caught at load time.
    """
    from deepms.chem import get_modification_table

    table = get_modification_table()
    entries = {}
    for key in vocabulary:
        name, _, site = key.rpartition("@")
        terminus = site if site in ("N-term", "C-term") else None
        mod = table.get(name, residue=None if terminus else site, terminus=terminus)
        entries[key] = {"accession": mod.accession, "mass": mod.monoisotopic_mass}
    return entries


class Predictor(ABC):
    """DataFrame in, DataFrame out; plus what registration needs (schema, example, metadata)."""

    #: input column -> (MLflow type, required); becomes the registered model's input schema
    input_schema: ClassVar[dict[str, tuple[str, bool]]] = {}
    #: keyword parameters of :meth:`predict` with defaults; become MLflow inference params
    params: ClassVar[dict[str, Any]] = {}
    #: what ``deepms predict`` offers for this predictor (run-time, input and auxiliary options)
    options: ClassVar[tuple[Option, ...]] = ()
    #: ``package.module.Class`` of the model a checkpoint holds when it does not record its class
    model_class: ClassVar[str] = ""

    @classmethod
    def legacy_model_class(cls, checkpoint: dict[str, Any]) -> str:
        """The model class of a checkpoint written before checkpoints recorded it (the one
        place a predictor may look at a checkpoint's contents to tell): :attr:`model_class`."""
        return cls.model_class

    @classmethod
    def trusts(cls, model_class: type) -> bool:
        """Whether checkpoints of ``model_class`` are read trusted (they carry pickles)."""
        return False

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **options: Any) -> Predictor:
        """Load from a checkpoint file alone (no training config): the model class the checkpoint
        records (else :meth:`legacy_model_class`); the description stored in it is checked."""
        from deepms.registry.reference import (
            DESCRIPTION_KEY,
            build_model,
            load_checkpoint,
            model_class_of,
        )

        checkpoint = load_checkpoint(path)  # weights only: a pickle travels as bytes, unread
        model_class = model_class_of(checkpoint, cls.legacy_model_class(checkpoint), path)
        model = build_model(checkpoint, model_class, path, trusted=cls.trusts(model_class))
        try:
            predictor = cls(model)  # type: ignore[call-arg]  # task predictors take the model
            predictor.check_description(checkpoint.get(DESCRIPTION_KEY) or {})
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: {exc}") from exc
        predictor.configure(**options)
        return predictor

    @abstractmethod
    def predict(self, frame: pd.DataFrame, **params: Any) -> pd.DataFrame:
        """Predictions for the rows of ``frame``."""

    @abstractmethod
    def input_example(self) -> pd.DataFrame:
        """A valid input of at least two rows (MLflow stores it with the model)."""

    #: rows per network batch and ``"32"`` or ``"bf16"``: used by the batching helpers below
    batch_size: int
    precision: str = "32"

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild and check the model (stored in the model's metadata)."""
        return {}

    def check_description(self, description: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Refuse a model whose stored description disagrees with this code (stale artifact)."""

    def configure(self, **options: Any) -> None:
        """Apply run-time options (batch size, precision, ...); unknown options are an error."""
        if options:
            raise ValueError(f"{type(self).__name__}: unknown options {sorted(options)}")

    def read_input(self, path: str | os.PathLike[str], chunk_size: int, **options: Any):
        """Chunks of input rows from a file (default: CSV, TSV or parquet)."""
        from deepms.io.precursors import read_table_chunks

        if options:
            raise ValueError(f"{type(self).__name__}: input options {sorted(options)} unused")
        return read_table_chunks(path, chunk_size)

    def write_output(
        self, tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]
    ) -> dict[str, int]:
        """Stream prediction tables into a file (default: CSV, TSV or parquet by extension)."""
        from deepms.io.library import write_tables

        return {"rows": write_tables(tables, path)}

    def predict_file(
        self,
        input_path: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        *,
        chunk_size: int = 20_000,
        auxiliary: Sequence[Predictor] = (),
        progress: bool = True,
        input_options: dict[str, Any] | None = None,
        on_error: str = "skip",
        **params: Any,
    ) -> dict[str, int]:
        """Read, predict and write chunk by chunk, with a progress bar.

        ``auxiliary`` predictors (e.g. a retention-time model) run first on each chunk; their
        output columns, one row per input row, are added to the input so this predictor can carry
        them into its output. ``on_error`` (``skip`` | ``raise``) is the policy for a record that
        cannot be predicted (:mod:`deepms.registry.record_errors`): skipped records are counted
        on stderr and listed in ``<output>.rejected.tsv``; the good ones are all predicted.
        """
        from tqdm.auto import tqdm

        from deepms.registry.record_errors import RejectedRecords, predict_isolating

        rejected = RejectedRecords(str(input_path), on_error)
        self.rejected = rejected  # readers hand it records they cannot even read (reject_record)
        chunks = self.read_input(input_path, chunk_size, **(input_options or {}))
        bar = tqdm(unit=" rows", desc=Path(output_path).name, disable=not progress)
        seen = [0]

        def process(chunk: pd.DataFrame) -> pd.DataFrame:
            if len(chunk.columns) and chunk.isna().all(axis=1).any():
                raise ValueError("empty line")  # a blank line of a table: a record error
            chunk = chunk.reset_index(drop=True)
            for helper in auxiliary:
                extra = helper.predict(chunk)
                if len(extra) != len(chunk):
                    raise RuntimeError(
                        f"auxiliary {type(helper).__name__} returned {len(extra)} rows for "
                        f"{len(chunk)} inputs: it must predict one row per input"
                    )
                for column in extra.columns:
                    chunk[column] = extra[column].to_numpy()
            return self.predict(chunk, **params)

        def tables() -> Iterator[pd.DataFrame]:
            for chunk in chunks:
                n = len(chunk)
                if self.row_independent:
                    yield from predict_isolating(process, chunk, rejected)
                else:
                    yield process(chunk)
                seen[0] += n
                bar.update(n)

        try:
            counts = self.write_output(tables(), output_path)
        finally:
            bar.close()
            self.rejected = None
        n_rejected = rejected.finish(output_path)
        return {"inputs": seen[0], **counts, **({"rejected": n_rejected} if n_rejected else {})}

    #: whether a row's prediction depends on its row alone, so bad rows can be set aside and the
    #: rest predicted (False for predictors that score a file as a whole, e.g. q-values)
    row_independent: ClassVar[bool] = True
    #: the run's rejected-record collector while :meth:`predict_file` runs (else None)
    rejected: Any = None

    def reject_record(self, record: str, cause: str) -> None:
        """A reader's hook for a record it cannot read: set aside under the run's policy (or
        raised, outside :meth:`predict_file`)."""
        if self.rejected is None:
            from deepms.registry.record_errors import RecordError

            raise RecordError(f"{record}: {cause}")
        self.rejected.reject(record, cause)

    # --- batching helpers for network predictors (they set ``batch_size``; see BatchPredictor) ---

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """No autograd, and bfloat16 autocast when ``precision`` says so (both thread-local)."""
        import torch

        bf16 = self.precision == "bf16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            yield

    def _batched(
        self, lengths: Sequence[int], run: Callable[[np.ndarray], T], workers: int = 1
    ) -> list[T]:
        """``run(rows)`` under :meth:`_inference` for batches of ``batch_size`` input rows sorted
        by length (little padding); results in batch order. ``workers`` > 1 runs that many
        batches at once in threads (torch releases the GIL)."""
        import numpy as np

        order = np.argsort(lengths, kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

        def call(rows: np.ndarray) -> T:
            with self._inference():
                return run(rows)

        if workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(call, batches))
        return [call(rows) for rows in batches]

    @staticmethod
    def _in_input_order(
        parts: Iterable[tuple[np.ndarray, Any]], n: int, dtype: Any = None
    ) -> np.ndarray:
        """Per-batch ``(rows, values)`` put back at their rows: ``dtype``, or the values' own;
        values may have trailing dimensions (``[rows, k]`` gives ``[n, k]``)."""
        import numpy as np

        out = np.zeros(n, dtype or np.float32)
        for rows, values in parts:
            values = np.asarray(values)
            if out.shape[1:] != values.shape[1:]:
                out = np.zeros((n, *values.shape[1:]), out.dtype)
            if dtype is None and out.dtype != values.dtype:
                out = out.astype(values.dtype)
            out[rows] = values
        return out


class BatchPredictor(Predictor):
    """A network predictor whose run-time options are batch size, precision and CPU threads."""

    options: ClassVar[tuple[Option, ...]] = BATCH_OPTIONS
    batch_size: int = 64

    def configure(
        self,
        batch_size: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
    ) -> None:
        """Batch size, ``precision="bf16"`` (autocast on CPU) and torch's CPU threads."""
        if precision is not None and str(precision) not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use one of {PRECISIONS}")
        self.batch_size = int(batch_size or self.batch_size)
        self.precision = str(precision or self.precision)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
