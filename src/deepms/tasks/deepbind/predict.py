"""DeepBind as a predictor: DNA/RNA FASTA in, binding scores out.

``deepms predict MODEL --input sites.fa --output scores.csv`` writes per sequence ``id``,
``length``, ``logit`` (DeepBind's score) and ``p_bound`` (its sigmoid) for the model's experiment.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from deepms.sequences.predict import SequencePredictor


class DeepBindPredictor(SequencePredictor):
    """A loaded :class:`DeepBindModel` (one experiment: one TF or RBP)."""

    model_class: ClassVar[str] = "deepms.tasks.deepbind.model.DeepBindModel"
    example_sequences: ClassVar[tuple[str, str]] = ("ACGTGACCGGAAGTGCACGT", "TTTTGCATACGTAAACGGTA")

    def output_columns(self) -> tuple[str, ...]:
        return ("logit", "p_bound")

    def outputs(self, x: Any, mask: Any) -> dict[str, np.ndarray]:
        logit = self.model(x, mask).float()
        return {"logit": logit.numpy(), "p_bound": logit.sigmoid().numpy()}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "experiment": self.model.hparams.experiment}
