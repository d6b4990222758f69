"""The deepms command line: fast help, data set listing, clear errors."""

from __future__ import annotations

import pytest

from deepms.cli import main


def test_datasets_list_filters_by_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list", "--task", "pdeep"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "pdeep_massivekb" in names and all(n.startswith("pdeep_") for n in names)


def test_unknown_dataset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "verify", "no_such_set", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "unknown data set 'no_such_set'" in err and "pdeep_massivekb" in err


def test_verify_checks_mirror_checksums(mirror, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "verify", "pdeep_massivekb", "--mirror", str(mirror)]) == 0
    assert capsys.readouterr().out.count("ok  ") == 2
