"""De novo results as mzTab 1.0 (PSM section, the layout Casanovo writes) and as plain CSV.

A PSM is a mapping with these keys (missing or ``None`` becomes ``null`` in mzTab, empty in CSV):

* ``sequence``: ProForma peptide (Unimod names or ``UNIMOD:n`` accessions); ``None`` or ``""``
  marks an unsequenced spectrum, which mzTab cannot hold (it is left out) and CSV keeps;
* ``spectrum_index``: 0-based position of the spectrum in the run (``ms_run[1]:index=N``), or
  ``spectrum_ref``: the native id (``scan=17``), which wins when both are given;
* ``title`` (MGF TITLE), ``charge``, ``precursor_mz`` (observed), ``calc_mz`` (computed from the
  sequence and charge when absent), ``retention_time`` (seconds), ``score`` (peptide score),
  ``aa_scores`` (one score per residue), ``accession``.

mzTab columns: ``sequence`` is the plain residue string and ``modifications`` the mzTab list
(``3-UNIMOD:35,0-UNIMOD:1``; 0 = N-term, n + 1 = C-term; ``null`` when unmodified); the full
ProForma goes to ``opt_global_cv_MS:1003169_proforma_peptidoform_sequence`` and the residue
scores to ``opt_ms_run[1]_aa_scores``, as Casanovo does.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from deepms.chem import Peptide, get_modification_table, parse_proforma

PSM_COLUMNS = (
    "sequence",
    "PSM_ID",
    "accession",
    "unique",
    "database",
    "database_version",
    "search_engine",
    "search_engine_score[1]",
    "modifications",
    "retention_time",
    "charge",
    "exp_mass_to_charge",
    "calc_mass_to_charge",
    "spectra_ref",
    "pre",
    "post",
    "start",
    "end",
    "opt_ms_run[1]_aa_scores",
    "opt_global_cv_MS:1003169_proforma_peptidoform_sequence",
    "opt_global_spectrum_title",
)
CSV_COLUMNS = (
    "spectrum_index",
    "spectrum_ref",
    "title",
    "sequence",
    "charge",
    "precursor_mz",
    "calc_mz",
    "retention_time",
    "score",
    "aa_scores",
)
NO_FIXED = "[MS, MS:1002453, No fixed modifications searched, ]"
NO_VARIABLE = "[MS, MS:1002454, No variable modifications searched, ]"
PSM_SCORE = "[MS, MS:1001143, search engine specific score for PSMs, ]"
_TOKEN = re.compile(r"^(?:([A-Z])\[([^\]]+)\]|\[([^\]]+)\]-|(.+)@(.+))$")


def _text(value: Any) -> str:
    """mzTab cell: ``null`` for missing; tabs and newlines would break the table."""
    if value is None or value == "":
        return "null"
    return re.sub(r"[\t\r\n]+", " ", str(value))


def _mod_param(token: str) -> tuple[str, str]:
    """``C[UNIMOD:4]``, ``[UNIMOD:1]-`` or ``Carbamidomethyl@C`` -> (CV param, site)."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise ValueError(f"modification {token!r}: expected 'C[UNIMOD:4]', '[Acetyl]-' or 'Name@C'")
    aa, key, nterm, name, site = match.groups()
    if nterm:
        key, site = nterm, "N-term"
    elif name:
        key = name
    else:
        site = aa
    mod = get_modification_table().get(key, residue=None if site == "N-term" else site)
    return f"[UNIMOD, {mod.accession}, {mod.name}, ]", site


def _mod_lines(kind: str, tokens: Sequence[str], none: str) -> list[tuple[str, str]]:
    if not tokens:
        return [(f"{kind}[1]", none)]
    lines = []
    for i, token in enumerate(tokens, 1):
        param, site = _mod_param(token)
        lines += [(f"{kind}[{i}]", param), (f"{kind}[{i}]-site", site)]
    return lines


def _location(ms_run_location: str) -> str:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", ms_run_location):
        return ms_run_location
    return Path(ms_run_location).resolve().as_uri()


def _modifications(peptide: Peptide) -> str:
    items = [f"{pos}-{mod.accession}" for pos, mod in enumerate(peptide.mods) if mod is not None]
    return ",".join(items) or "null"


def _spectra_ref(psm: Mapping[str, Any], row: int) -> str:
    ref = psm.get("spectrum_ref")
    if ref is None:
        index = psm.get("spectrum_index")
        if index is None:
            raise ValueError(f"PSM {row}: needs 'spectrum_index' or 'spectrum_ref'")
        ref = f"index={int(index)}"
    return f"ms_run[1]:{ref}"


def _number(value: Any, fmt: str = "{:.6f}") -> str:
    return "null" if value is None else fmt.format(float(value))


def _scores(values: Sequence[float] | None, sep: str = ",") -> str:
    return "" if not values else sep.join(f"{float(v):.5f}" for v in values)


def write_mztab(
    path: str | PathLike[str],
    psms: Iterable[Mapping[str, Any]],
    *,
    ms_run_location: str,
    software_name: str = "deepms",
    software_version: str,
    parameters: Mapping[str, Any] | None = None,
    description: str = "",
    fixed_mods: Sequence[str] = (),
    variable_mods: Sequence[str] = (),
) -> int:
    """Write an mzTab 1.0 Summary/Identification file; returns the number of PSM rows written.

    ``parameters`` become ``software[1]-setting`` lines; ``fixed_mods``/``variable_mods`` are
    vocabulary tokens (``C[UNIMOD:4]``, ``[UNIMOD:1]-``) or ``Name@Site`` written as Unimod CV
    params. Unsequenced spectra (no sequence) are left out.
    """
    software = f"[, , {software_name}, {software_version}]"  # user param: no CV term for deepms
    metadata = [
        ("mzTab-version", "1.0.0"),
        ("mzTab-mode", "Summary"),
        ("mzTab-type", "Identification"),
        ("description", description or f"{software_name} de novo peptide sequencing"),
        ("ms_run[1]-location", _location(ms_run_location)),
        ("software[1]", software),
        *(
            (f"software[1]-setting[{i}]", f"{key} = {value}")
            for i, (key, value) in enumerate((parameters or {}).items(), 1)
        ),
        ("psm_search_engine_score[1]", PSM_SCORE),
        *_mod_lines("fixed_mod", fixed_mods, NO_FIXED),
        *_mod_lines("variable_mod", variable_mods, NO_VARIABLE),
    ]
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        for key, value in metadata:
            handle.write(f"MTD\t{key}\t{_text(value)}\n")
        handle.write("\t".join(["PSH", *PSM_COLUMNS]) + "\n")
        for row, psm in enumerate(psms):
            if not psm.get("sequence"):
                continue
            peptide = parse_proforma(psm["sequence"])
            charge = psm.get("charge")
            calc = psm.get("calc_mz")
            if calc is None and charge:
                calc = peptide.precursor_mz(int(charge))
            written += 1
            cells = [
                "PSM",
                peptide.sequence,
                written,
                _text(psm.get("accession")),
                "null",
                "null",
                "null",
                software,
                _number(psm.get("score")),
                _modifications(peptide),
                _number(psm.get("retention_time"), "{:.3f}"),
                "null" if charge is None else int(charge),
                _number(psm.get("precursor_mz")),
                _number(calc),
                _spectra_ref(psm, row),
                "null",
                "null",
                "null",
                "null",
                _scores(psm.get("aa_scores")) or "null",
                _text(psm["sequence"]),
                _text(psm.get("title")),
            ]
            handle.write("\t".join(str(c) for c in cells) + "\n")
    return written


def write_denovo_csv(path: str | PathLike[str], psms: Iterable[Mapping[str, Any]]) -> int:
    """Every spectrum, sequenced or not, as one CSV row (``aa_scores`` ``;``-separated)."""
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(CSV_COLUMNS)
        for psm in psms:
            row = {key: psm.get(key) for key in CSV_COLUMNS}
            row["aa_scores"] = _scores(psm.get("aa_scores"), ";")
            out.writerow(["" if row[key] is None else row[key] for key in CSV_COLUMNS])
            written += 1
    return written
