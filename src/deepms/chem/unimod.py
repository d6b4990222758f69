"""Unimod modifications, read offline from the copy psims vendors, so no run ever needs the network.

psims ships ``unimod_tables.xml.gz`` (the Unimod relational dump). Its own ``Unimod`` class builds a
SQLite database from it (slow, and falls back to a download when asked for the default URL), so we
parse the XML directly with ElementTree (~0.1 s) on first lookup and keep the table for the process.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from importlib import resources

from deepms.errors import UnknownModificationError

_VENDOR = "psims.controlled_vocabulary.vendor"

# Names other tools write that are not Unimod PSI-MS names (lower-case key -> PSI-MS name).
_ALIASES: dict[str, str] = {
    "deamidation": "Deamidated",
    "glygly": "GG",
    "ubiquitination": "GG",
    "cam": "Carbamidomethyl",
    "carbamidomethylation": "Carbamidomethyl",
    "ox": "Oxidation",
    "ac": "Acetyl",
    "acetylation": "Acetyl",
    "ph": "Phospho",
    "phosphorylation": "Phospho",
    "methylation": "Methyl",
    "dimethylation": "Dimethyl",
    "trimethylation": "Trimethyl",
}
# MS2PIP/DeepLC write one pyro-glu name for both Q and E: the residue decides (Unimod 28 / 27).
_PYRO_ALIASES = frozenset({"pyro_glu", "pyro-glu", "pyroglu", "pyro glu", "pyroglutamate"})
_PYRO_BY_RESIDUE = {"Q": 28, "E": 27}
_MASS_DELTA = re.compile(r"^[+-]\d+(\.\d*)?$")


@dataclass(frozen=True)
class Modification:
    """One Unimod entry; value-equal, so peptides built from different notations compare equal."""

    name: str
    unimod_id: int
    monoisotopic_mass: float

    @property
    def accession(self) -> str:
        return f"UNIMOD:{self.unimod_id}"

    def __str__(self) -> str:
        return self.name


class ModificationTable:
    """Lookup by name (any case), accession, id, alias, or mass delta (ProForma ``+15.995``)."""

    def __init__(
        self,
        by_id: dict[int, Modification],
        names: dict[str, int],
        sites: dict[int, frozenset[str]],
        approved: frozenset[int],
        compositions: dict[int, dict[str, int]] | None = None,
    ) -> None:
        self.by_id = by_id
        self._names = names
        self._sites = sites
        self._approved = approved
        self._compositions = compositions or {}
        self._mass_cache: dict[tuple[float, str | None, str | None, float], Modification] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, key: object) -> bool:
        try:
            self.get(key)  # type: ignore[arg-type]
        except UnknownModificationError:
            return False
        return True

    def get(
        self, key: str | int | float, residue: str | None = None, terminus: str | None = None
    ) -> Modification:
        """Resolve ``key`` for a mod on ``residue`` (a letter) at ``terminus`` ("N-term"/"C-term").

        The residue only matters for ambiguous aliases (``Pyro_glu``) and mass deltas.
        """
        if isinstance(key, bool):
            raise UnknownModificationError(f"unknown modification {key!r}: not a name or id")
        if isinstance(key, int):
            return self._by_accession(key, key)
        if isinstance(key, float):
            return self.by_mass(key, residue, terminus)
        text = str(key).strip()
        low = text.lower()
        if low.startswith("unimod:") or low.startswith("u:"):
            rest = text.split(":", 1)[1].strip()
            return (
                self._by_accession(int(rest), key) if rest.isdigit() else self._by_name(rest, key)
            )
        if text.isdigit():
            return self._by_accession(int(text), key)
        if _MASS_DELTA.match(text):
            return self.by_mass(float(text), residue, terminus)
        if low in _PYRO_ALIASES and residue in _PYRO_BY_RESIDUE:
            return self.by_id[_PYRO_BY_RESIDUE[residue]]
        return self._by_name(text, key)

    def composition(self, mod: Modification | str | int) -> dict[str, int]:
        """Elemental composition delta of an entry (Unimod's bricks expanded to elements), e.g.
        Phospho -> ``{"H": 1, "O": 3, "P": 1}``; isotopes keep their own symbol (``13C``)."""
        entry = mod if isinstance(mod, Modification) else self.get(mod)
        try:
            return dict(self._compositions[entry.unimod_id])
        except KeyError:
            raise UnknownModificationError(
                f"modification {entry.name} ({entry.accession}) has no composition in Unimod"
            ) from None

    def _by_accession(self, number: int, key: object) -> Modification:
        try:
            return self.by_id[number]
        except KeyError:
            raise UnknownModificationError(
                f"unknown modification {key!r}: no Unimod entry with accession UNIMOD:{number}"
            ) from None

    def _by_name(self, name: str, key: object) -> Modification:
        low = name.lower()
        number = self._names.get(low)
        if number is None and low in _ALIASES:
            number = self._names.get(_ALIASES[low].lower())
        if number is None:
            raise UnknownModificationError(
                f"unknown modification {key!r}: not a Unimod name, accession or known alias"
            )
        return self.by_id[number]

    def by_mass(
        self,
        delta: float,
        residue: str | None = None,
        terminus: str | None = None,
        tolerance: float = 0.01,
    ) -> Modification:
        """Closest Unimod entry to a mass delta, preferring ones specified for the residue/terminus.

        Ties (isobaric entries) go to approved entries, then the lowest accession (the common one).
        """
        cache_key = (round(delta, 6), residue, terminus, tolerance)
        if cache_key in self._mass_cache:
            return self._mass_cache[cache_key]
        best: tuple[int, int, float, int] | None = None
        for number, mod in self.by_id.items():
            err = abs(mod.monoisotopic_mass - delta)
            if err > tolerance:
                continue
            sites = self._sites.get(number, frozenset())
            site_rank = 0 if residue in sites else 1 if terminus in sites else 2
            rank = (site_rank, number not in self._approved, round(err, 4), number)
            if best is None or rank < best:
                best = rank  # type: ignore[assignment]
        if best is None:
            raise UnknownModificationError(
                f"unknown modification {delta:+g}: no Unimod entry within {tolerance} Da"
            )
        mod = self.by_id[best[3]]
        self._mass_cache[cache_key] = mod
        return mod


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _load_table() -> ModificationTable:
    """Parse psims's vendored Unimod XML: entries, names (PSI-MS first), residue specificities
    and compositions (``mod2brick`` counts of bricks, ``brick2element`` bricks as elements)."""
    by_id: dict[int, Modification] = {}
    psi, interim, alt, full = {}, {}, {}, {}
    sites: dict[int, set[str]] = {}
    approved: set[int] = set()
    brick_ids: dict[str, int] = {}
    brick_elements: dict[int, dict[str, int]] = {}
    mod_bricks: dict[int, list[tuple[str, int]]] = {}
    source = resources.files(_VENDOR).joinpath("unimod_tables.xml.gz")
    with source.open("rb") as raw, gzip.open(raw) as stream:
        for _, el in ET.iterparse(stream):
            tag = _local(el.tag)
            a = el.attrib
            if tag == "modifications_row":
                number = int(a["record_id"])
                name = a.get("ex_code_name") or a["code_name"]
                by_id[number] = Modification(name, number, float(a["mono_mass"]))
                psi.setdefault(name.lower(), number)
                interim.setdefault(a["code_name"].lower(), number)
                full.setdefault(a.get("full_name", "").lower(), number)
                if a.get("approved") == "1":
                    approved.add(number)
            elif tag == "alt_names_row":
                alt.setdefault(a["alt_name"].lower(), int(a["mod_key"]))
            elif tag == "specificity_row":
                sites.setdefault(int(a["mod_key"]), set()).add(a["one_letter"])
            elif tag == "bricks_row":
                brick_ids[a["brick"]] = int(a["record_id"])
            elif tag == "brick2element_row":
                elements = brick_elements.setdefault(int(a["brick_key"]), {})
                elements[a["element"]] = int(a["num_element"])
            elif tag == "mod2brick_row":
                mod_bricks.setdefault(int(a["mod_key"]), []).append(
                    (a["brick"], int(a["num_brick"]))
                )
            el.clear()
    names: dict[str, int] = {}
    for level in (psi, {k: psi[v.lower()] for k, v in _ALIASES.items()}, interim, alt, full):
        for key, number in level.items():
            if key:
                names.setdefault(key, number)
    frozen_sites = {k: frozenset(v) for k, v in sites.items()}
    compositions = {
        number: _expand_bricks(bricks, brick_ids, brick_elements)
        for number, bricks in mod_bricks.items()
    }
    return ModificationTable(by_id, names, frozen_sites, frozenset(approved), compositions)


def _expand_bricks(
    bricks: list[tuple[str, int]], ids: dict[str, int], elements: dict[int, dict[str, int]]
) -> dict[str, int]:
    """Element counts of a list of (brick, count); zero counts are dropped."""
    total: dict[str, int] = {}
    for brick, count in bricks:
        for element, n in elements.get(ids.get(brick, -1), {brick: 1}).items():
            total[element] = total.get(element, 0) + n * count
    return {element: n for element, n in sorted(total.items()) if n}


@cache
def get_modification_table() -> ModificationTable:
    """The process-wide table, loaded on first use (not at import: importing stays fast)."""
    return _load_table()
