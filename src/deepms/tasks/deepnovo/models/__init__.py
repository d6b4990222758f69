"""The two deepnovo architectures: DeepNovo (CNN + LSTM) and a Casanovo-style transformer."""

from __future__ import annotations

from deepms.tasks.deepnovo.models.casanovo import CasanovoModel
from deepms.tasks.deepnovo.models.deepnovo import DeepNovoModel

__all__ = ["CasanovoModel", "DeepNovoModel"]
