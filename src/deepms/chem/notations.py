"""Parsers from each tool's peptide notation to :class:`Peptide`, so data sets can be mixed freely.

Every parser raises a :class:`PeptideParseError` subclass whose message names the notation, the
offending input and the cause. Results are cached: training data repeats peptides many times.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from deepms.chem.peptide import Peptide
from deepms.chem.unimod import Modification, get_modification_table
from deepms.errors import PeptideParseError, UnknownModificationError

_CACHE = 1 << 16
# DeepRT (Ma et al. 2018) codes modified residues as digits.
DEEPRT_DIGITS: dict[str, tuple[str, str]] = {
    "1": ("M", "Oxidation"),
    "2": ("S", "Phospho"),
    "3": ("T", "Phospho"),
    "4": ("Y", "Phospho"),
}


def _resolve(key: str, seq: str, pos: int) -> Modification:
    """Look a mod up for site ``pos`` (0 N-term, 1..n residue, n+1 C-term)."""
    n = len(seq)
    residue = seq[min(max(pos - 1, 0), n - 1)]
    terminus = "N-term" if pos == 0 else "C-term" if pos == n + 1 else None
    alternatives = [k for k in key.split("|") if not k.strip().upper().startswith("INFO:")]
    for alt in alternatives[:-1]:  # ProForma "Name|UNIMOD:n|...": first resolvable wins
        try:
            return get_modification_table().get(alt, residue=residue, terminus=terminus)
        except UnknownModificationError:
            continue
    return get_modification_table().get(
        alternatives[-1] if alternatives else key, residue, terminus
    )


def _build(seq: str, placed: list[tuple[int, str]]) -> Peptide:
    """Peptide from a sequence and ``(site, mod key)`` pairs; checks sites before lookups."""
    if not seq:
        raise PeptideParseError("empty sequence")
    mods: list[Modification | None] = [None] * (len(seq) + 2)
    for pos, key in placed:
        if not 0 <= pos <= len(seq) + 1:
            raise PeptideParseError(
                f"modification {key!r} at position {pos} is outside the peptide"
            )
        if mods[pos] is not None:
            raise PeptideParseError(f"two modifications at position {pos} ({mods[pos]}, {key})")
        mods[pos] = _resolve(key, seq, pos)
    return Peptide(seq, tuple(mods))


def _wrap(notation: str, text: object, exc: PeptideParseError) -> PeptideParseError:
    return type(exc)(f"cannot parse {notation} peptide {text!r}: {exc}")


def parse_proforma(text: str) -> Peptide:
    """ProForma 2.0 subset: name/accession/mass-delta mods on residues and termini, one per site."""
    return _proforma(str(text), "ProForma")


@lru_cache(maxsize=_CACHE)
def _proforma(text: str, notation: str) -> Peptide:
    try:
        seq, placed = _tokenise(text.strip())
        return _build(seq, placed)
    except PeptideParseError as exc:
        raise _wrap(notation, text, exc) from exc


def _tokenise(s: str) -> tuple[str, list[tuple[int, str]]]:
    residues: list[str] = []
    placed: list[tuple[int, str]] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "[":
            j = s.find("]", i)
            if j < 0:
                raise PeptideParseError(f"unclosed '[' at character {i + 1}")
            key = s[i + 1 : j].strip()
            i = j + 1
            if not residues:  # N-term, with or without the ProForma '-'
                i += s.startswith("-", i)
                pos = 0
            else:
                pos = len(residues)
            if key:
                placed.append((pos, key))
        elif c == "-" and residues and s.startswith("[", i + 1) and s.endswith("]"):
            key = s[i + 2 : -1].strip()
            if "[" in key or "]" in key:
                raise PeptideParseError(f"unexpected text after C-term at character {i + 1}")
            if key:
                placed.append((len(residues) + 1, key))
            break
        elif c.isalpha():
            residues.append(c)
            i += 1
        else:
            raise PeptideParseError(
                f"unsupported character {c!r} at position {i + 1} (ProForma features such as "
                "charge '/z', labile '{..}', ambiguity '(..)' and global '<..>' are not supported)"
            )
    return "".join(residues), placed


def parse_unimod_bracket(text: str) -> Peptide:
    """DLOmix/Prosit ``_AC[UNIMOD:4]M[UNIMOD:35]K_`` or ``[UNIMOD:1]-PEPTIDE`` (``_`` optional)."""
    return _proforma(str(text).strip().strip("_"), "UNIMOD-bracket")


_FLANKED = re.compile(r"[A-Z_\-]\.(?P<core>.+)\.[A-Z_\-]")
_LEADING_DELTA = re.compile(r"^([+-]\d+(?:\.\d+)?)")
_RESIDUE_DELTA = re.compile(r"([A-Z])([+-]\d+(?:\.\d+)?)")


def parse_labelled_mgf(text: str) -> Peptide:
    """``SEQ=`` labels as public labelled MGFs write them: ProForma; flanked ``_.PEPTIDE._`` or
    ``K.PEPTIDE.A`` (the de novo benchmark suite's; flanks dropped); Casanovo / DeepNovo mass
    deltas ``C+57.021``, ``M+15.995``, ``+42.011PEPTIDE`` (as ProForma mass deltas, resolved to
    Unimod by mass like any ``[+57.021]``)."""
    s = str(text).strip()
    flanked = _FLANKED.fullmatch(s)
    if flanked:
        s = flanked.group("core")
    if "[" not in s:
        s = _RESIDUE_DELTA.sub(r"\1[\2]", _LEADING_DELTA.sub(r"[\1]-", s))
    return _proforma(s, "labelled-MGF")


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip() in ("", "-", "nan")


def parse_peprec(sequence: str, modifications: str | None) -> Peptide:
    """PEPREC ``pos|Name|pos|Name``: 0 = N-term, -1 = C-term, 1-based; ``-``/empty = none."""
    mods = "" if _missing(modifications) else str(modifications).strip()
    return _pipe_pairs(str(sequence).strip(), mods, "PEPREC")


def parse_deeplc(sequence: str, modifications: str | None) -> Peptide:
    """DeepLC: same ``pos|Name`` notation as PEPREC; empty or NaN = unmodified."""
    mods = "" if _missing(modifications) else str(modifications).strip()
    return _pipe_pairs(str(sequence).strip(), mods, "DeepLC")


@lru_cache(maxsize=_CACHE)
def _pipe_pairs(seq: str, mods: str, notation: str) -> Peptide:
    try:
        fields = mods.split("|") if mods else []
        if len(fields) % 2:
            raise PeptideParseError("modifications need 'position|name' pairs")
        placed = []
        for pos_text, name in zip(fields[::2], fields[1::2], strict=True):
            pos = _int(pos_text)
            placed.append((len(seq) + 1 if pos == -1 else pos, name.strip()))
        return _build(seq, placed)
    except PeptideParseError as exc:
        raise _wrap(notation, f"{seq} {mods}", exc) from exc


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise PeptideParseError(f"modification position {text!r} is not an integer") from None


def parse_pdeep2(sequence: str, modinfo: str | None) -> Peptide:
    """pDeep2/pFind ``18,Malonyl[K];0,Acetyl[ProteinN-term];`` (1-based; site is checked)."""
    info = "" if _missing(modinfo) else str(modinfo).strip()
    return _pdeep2(str(sequence).strip(), info)


@lru_cache(maxsize=_CACHE)
def _pdeep2(seq: str, info: str) -> Peptide:
    try:
        placed = []
        for item in filter(None, (part.strip() for part in info.split(";"))):
            pos_text, sep, name = item.partition(",")
            if not sep:
                raise PeptideParseError(f"item {item!r} is not 'position,Name[site]'")
            pos = _int(pos_text)
            site = ""
            if name.endswith("]") and "[" in name:
                name, _, site = name[:-1].rpartition("[")
            if "N-term" in site:
                pos = 0
            elif "C-term" in site:
                pos = len(seq) + 1
            elif site and 1 <= pos <= len(seq) and seq[pos - 1] != site:
                raise PeptideParseError(
                    f"{item!r} names site {site} but residue {pos} is {seq[pos - 1]}"
                )
            placed.append((pos, name.strip()))
        return _build(seq, placed)
    except PeptideParseError as exc:
        raise _wrap("pDeep2", f"{seq} {info}", exc) from exc


@lru_cache(maxsize=_CACHE)
def parse_deeprt(text: str) -> Peptide:
    """DeepRT digits: 1 = M[Oxidation], 2 = S[Phospho], 3 = T[Phospho], 4 = Y[Phospho]."""
    s = str(text).strip()
    try:
        residues, placed = [], []
        for i, c in enumerate(s, start=1):
            if c.isdigit():
                if c not in DEEPRT_DIGITS:
                    raise UnknownModificationError(
                        f"digit {c!r} at position {i} has no DeepRT meaning (known: "
                        + ", ".join(f"{d}={aa}[{m}]" for d, (aa, m) in DEEPRT_DIGITS.items())
                        + ")"
                    )
                aa, name = DEEPRT_DIGITS[c]
                placed.append((i, name))
                c = aa
            residues.append(c)
        return _build("".join(residues), placed)
    except PeptideParseError as exc:
        raise _wrap("DeepRT", s, exc) from exc


_SINGLE = {
    "proforma": parse_proforma,
    "unimod": parse_unimod_bracket,
    "deeprt": parse_deeprt,
    "mgf": parse_labelled_mgf,
}
_PAIRED = {"peprec": parse_peprec, "deeplc": parse_deeplc, "pdeep2": parse_pdeep2}
_ALIASES = {
    "dlomix": "unimod",
    "prosit": "unimod",
    "ms2pip": "peprec",
    "plabel": "pdeep2",
    "casanovo": "mgf",
}


def parse_peptide(
    text: str, notation: str = "proforma", modifications: str | None = None
) -> Peptide:
    """Dispatch by notation name; ``modifications`` is the separate mod column where one exists."""
    kind = _ALIASES.get(notation.lower(), notation.lower())
    if kind in _SINGLE:
        return _SINGLE[kind](text)
    if kind in _PAIRED:
        return _PAIRED[kind](text, modifications)
    known = sorted([*_SINGLE, *_PAIRED, *_ALIASES])
    raise ValueError(f"unknown peptide notation {notation!r}; known: {known}")


def format_peprec(peptide: Peptide) -> tuple[str, str]:
    """``(sequence, "pos|Name|...")`` for MS2PIP/DeepLC input (``-`` when unmodified)."""
    n = peptide.length
    pairs = [f"{-1 if i == n + 1 else i}|{mod.name}" for i, mod in enumerate(peptide.mods) if mod]
    return peptide.sequence, "|".join(pairs) or "-"


def format_unimod_bracket(peptide: Peptide) -> str:
    """ProForma with accessions (``[UNIMOD:1]-PEPC[UNIMOD:4]K``), the DLOmix/Prosit input form."""
    n = peptide.length
    m = peptide.mods
    out = [f"[{m[0].accession}]-"] if m[0] else []
    out += [
        aa + (f"[{m[i].accession}]" if m[i] else "") for i, aa in enumerate(peptide.sequence, 1)
    ]
    out += [f"-[{m[n + 1].accession}]"] if m[n + 1] else []
    return "".join(out)
