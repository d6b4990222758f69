"""Data catalogue: complete, checksums match the mirror, mirror/cache/download resolution."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from deepms.datasets import (
    DataFile,
    get_dataset,
    list_datasets,
    resolve,
    resolve_file,
    sha256_file,
)
from deepms.errors import ChecksumError, DatasetNotFoundError

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
SUMS = MIRROR / "SHA256SUMS"
needs_mirror = pytest.mark.skipif(not SUMS.exists(), reason="data mirror not available")


def catalogue_files() -> dict[str, DataFile]:
    return {f.path: f for name in list_datasets() for f in get_dataset(name).files}


def test_pdeep_datasets_present() -> None:
    assert {
        "pdeep_massivekb",
        "pdeep_dlomix_proteometools",
        "pdeep_pdeep2_kmod_malonyl",
        "pdeep_pdeep2_example",
    } == set(list_datasets("pdeep"))
    massivekb = get_dataset("pdeep_massivekb")
    assert massivekb.file(".mgf").path == "pdeep/ms2pip_massivekb_selected_500.mgf"
    assert massivekb.file(".mgf").url == (
        "https://raw.githubusercontent.com/compomics/ms2pip/"
        "f9c3f71eff7dd0d722d1bc2ab74b810c0235ed5b/tests/test_data/massivekb_selected_500.mgf"
    )
    assert massivekb.licence.startswith("Apache-2.0") and massivekb.description


def test_catalogue_entries_well_formed() -> None:
    files = [f for name in list_datasets() for f in get_dataset(name).files]
    assert len(files) == len({f.path for f in files})  # no file in two data sets
    for f in files:
        assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
        assert f.url is None or f.url.startswith("https://raw.githubusercontent.com/")
        assert f.url or f.note  # a file without URL says why


def test_unknown_dataset_lists_known() -> None:
    with pytest.raises(DatasetNotFoundError, match="pdeep_massivekb"):
        get_dataset("no_such_set")


@needs_mirror
def test_catalogue_covers_mirror_and_checksums_match() -> None:
    expected = dict(reversed(line.split()) for line in SUMS.read_text().splitlines() if line)
    catalogue = catalogue_files()
    assert set(catalogue) == set(expected)
    for path, datafile in catalogue.items():
        assert datafile.sha256 == expected[path], path


@needs_mirror
def test_resolve_from_mirror_verifies() -> None:
    paths = resolve("pdeep_massivekb", mirror=MIRROR, download=False)
    assert set(paths) == {
        "pdeep/ms2pip_massivekb_selected_500.mgf",
        "pdeep/ms2pip_massivekb_selected_500.peprec",
    }
    for path in paths.values():
        assert path.is_file() and path.is_relative_to(MIRROR)


@needs_mirror
def test_corrupted_mirror_copy_raises(tmp_path: Path) -> None:
    datafile = get_dataset("pdeep_pdeep2_example").files[0]
    copy = tmp_path / datafile.path
    copy.parent.mkdir(parents=True)
    shutil.copyfile(MIRROR / datafile.path, copy)
    assert resolve_file(datafile, mirror=tmp_path, cache_dir=tmp_path / "c") == copy
    copy.write_bytes(copy.read_bytes().replace(b"246224.5", b"246224.6"))
    with pytest.raises(ChecksumError) as info:
        resolve_file(datafile, mirror=tmp_path, cache_dir=tmp_path / "c", download=False)
    err = info.value
    assert err.path == str(copy) and err.expected == datafile.sha256
    assert err.actual == hashlib.sha256(copy.read_bytes()).hexdigest() != err.expected
    assert datafile.path.split("/")[-1] in str(err) and err.expected in str(err)


def make_file(tmp_path: Path, content: bytes = b"spec\tpeptide\n") -> tuple[Path, DataFile]:
    source = tmp_path / "origin" / "x.tsv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    return source, DataFile(path="task/x.tsv", url=source.as_uri(), sha256=sha)


def test_falls_back_to_cache(tmp_path: Path) -> None:
    _, datafile = make_file(tmp_path)
    cached = tmp_path / "cache" / datafile.path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"spec\tpeptide\n")
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    got = resolve_file(datafile, mirror=empty_mirror, cache_dir=tmp_path / "cache", download=False)
    assert got == cached


def test_download_file_url(tmp_path: Path) -> None:
    source, datafile = make_file(tmp_path)
    got = resolve_file(datafile, mirror=tmp_path / "none", cache_dir=tmp_path / "cache")
    assert got == tmp_path / "cache" / datafile.path
    assert got.read_bytes() == source.read_bytes()
    assert [p.name for p in got.parent.iterdir()] == ["x.tsv"]  # no partial files left


def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    _, datafile = make_file(tmp_path)
    wrong = DataFile(datafile.path, datafile.url, "0" * 64)
    with pytest.raises(ChecksumError) as info:
        resolve_file(wrong, mirror=None, cache_dir=tmp_path / "cache")
    assert info.value.expected == "0" * 64
    assert not any((tmp_path / "cache").rglob("*.tsv*"))


def test_missing_everywhere(tmp_path: Path) -> None:
    _, datafile = make_file(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"task/x\.tsv") as info:
        resolve_file(datafile, mirror=tmp_path / "m", cache_dir=tmp_path / "c", download=False)
    assert str(tmp_path / "c") in str(info.value)
    broken = DataFile(datafile.path, (tmp_path / "gone.tsv").as_uri(), datafile.sha256)
    with pytest.raises(DatasetNotFoundError, match="download"):
        resolve_file(broken, mirror=None, cache_dir=tmp_path / "c")


def test_env_mirror_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, datafile = make_file(tmp_path)
    mirror = tmp_path / "envmirror"
    (mirror / "task").mkdir(parents=True)
    shutil.copyfile(source, mirror / datafile.path)
    monkeypatch.setenv("DEEPMS_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("DEEPMS_CACHE", str(tmp_path / "envcache"))
    assert resolve_file(datafile, download=False) == mirror / datafile.path
    monkeypatch.delenv("DEEPMS_DATA_MIRROR")
    assert resolve_file(datafile) == tmp_path / "envcache" / datafile.path


def test_sha256_memoised(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    first = sha256_file(path)
    assert first == hashlib.sha256(b"abc").hexdigest() == sha256_file(path)
    path.write_bytes(b"abcd")  # size changes -> recomputed
    assert sha256_file(path) == hashlib.sha256(b"abcd").hexdigest()
