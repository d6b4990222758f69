"""Options a predictor declares, so ``deepms predict`` stays task-blind.

A predictor lists :class:`Option` specs (``Predictor.options``); the CLI turns them into argparse
flags (``min_intensity`` -> ``--min-intensity``) and ``deepms predict MODEL --help`` lists them.
Where a value goes is the option's ``kind``: ``run`` -> :meth:`Predictor.configure`, ``input`` ->
:meth:`Predictor.read_input`, ``model`` -> another model loaded as an auxiliary predictor whose
columns are added to each input chunk (e.g. a retention-time model for a spectral library).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

#: ``precision`` values of the batching helpers: float32, or bfloat16 autocast on CPU
PRECISIONS = ("32", "bf16")


@dataclass(frozen=True)
class Option:
    """One predictor option: name (a Python keyword), type, default (for help), help text."""

    name: str
    type: Callable[[str], Any] = str
    default: Any = None
    help: str = ""
    kind: Literal["run", "input", "model"] = "run"
    choices: tuple[str, ...] | None = None
    #: keyword the value is passed as, when it differs from ``name`` (e.g. ``variable_mods``)
    target: str | None = None
    #: title of the ``--help`` group the option is listed in
    group: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def keyword(self) -> str:
        return self.target or self.name


def int_list(text: str) -> tuple[int, ...]:
    """``2,3`` or ``2-4`` -> (2, 3) / (2, 3, 4)."""
    if "-" in text:
        low, high = (int(v) for v in text.split("-", 1))
        return tuple(range(low, high + 1))
    return tuple(int(v) for v in text.split(",") if v.strip())


def name_list(text: str) -> tuple[str, ...]:
    """``Oxidation@M,Phospho@STY`` -> a tuple of names; ``none`` -> ()."""
    return tuple(m.strip() for m in text.split(",") if m.strip() and m.strip().lower() != "none")


BATCH_SIZE = Option("batch_size", int, 64, "rows per network batch")
PRECISION = Option("precision", str, "32", "bf16: bfloat16 autocast on CPU", choices=PRECISIONS)
THREADS = Option("threads", int, None, "torch CPU threads")
WORKERS = Option("workers", int, 1, "batches predicted at once, in threads")
#: the run-time options of :class:`deepms.registry.predictor.BatchPredictor`
BATCH_OPTIONS = (BATCH_SIZE, PRECISION, THREADS)

DIGESTION = "FASTA digestion (pyteomics)"
#: a FASTA digested into precursors (:class:`deepms.io.precursors.DigestSettings`)
DIGEST_OPTIONS = (
    Option("enzyme", str, "trypsin", "expasy rule name or regex", "input", group=DIGESTION),
    Option("missed_cleavages", int, 1, "", "input", group=DIGESTION),
    Option("min_length", int, 7, "", "input", group=DIGESTION),
    Option("max_length", int, 30, "", "input", group=DIGESTION),
    Option("charges", int_list, "2-3", "e.g. 2-3 or 2,3", "input", group=DIGESTION),
    Option("fixed_mods", name_list, "Carbamidomethyl@C", "or none", "input", group=DIGESTION),
    Option(
        "var_mods",
        name_list,
        None,
        "e.g. Oxidation@M,Phospho@STY",
        "input",
        target="variable_mods",
        group=DIGESTION,
    ),
    Option(
        "max_var_mods",
        int,
        1,
        "per peptide",
        "input",
        target="max_variable_mods",
        group=DIGESTION,
    ),
)


def with_default(option: Option, default: Any) -> Option:
    """``option`` with another default (a predictor whose batch size differs, say)."""
    from dataclasses import replace

    return replace(option, default=default)
