"""Config composition rules users rely on: a task may set trainer options; threads is applied."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from deepms.training.runner import _set_threads

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_a_task_config_overrides_the_trainer_group(tmp_path: Path) -> None:
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "short.yaml").write_text(
        "# @package _global_\ndefaults:\n  - pdeep\ntrainer:\n  max_epochs: 3\n"
    )
    overrides = [f"hydra.searchpath=[file://{tmp_path}]"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        default = compose("config", overrides=["task=pdeep"])
        short = compose("config", overrides=["task=short", *overrides])
        cli_wins = compose("config", overrides=["task=short", "trainer.max_epochs=7", *overrides])
    assert default.trainer.max_epochs != 3
    assert short.trainer.max_epochs == 3
    assert short.task.name == "pdeep"
    assert cli_wins.trainer.max_epochs == 7


def test_threads_setting_caps_torch_threads() -> None:
    before = torch.get_num_threads()
    try:
        _set_threads(1)
        assert torch.get_num_threads() == 1
        _set_threads(None)  # null leaves torch's own choice alone
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
