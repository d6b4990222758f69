"""Deep-RBPPred as a predictor: protein FASTA in, RNA-binding probability out.

``deepms predict MODEL --input proteins.fasta --output rbp.csv`` writes per protein ``id``,
``length``, ``p_rbp`` and ``is_rbp`` (``p_rbp`` at or above the model's cutoff, 0.5 by default).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from deepms.sequences.predict import SequencePredictor


class RBPPredPredictor(SequencePredictor):
    """A loaded :class:`RBPPredModel`."""

    model_class: ClassVar[str] = "deepms.tasks.rbppred.model.RBPPredModel"

    def output_columns(self) -> tuple[str, ...]:
        return ("p_rbp", "is_rbp")

    def outputs(self, x: Any, mask: Any) -> dict[str, np.ndarray]:
        probability = self.model(x, mask).float().sigmoid().numpy()
        return {"p_rbp": probability, "is_rbp": probability >= self.model.hparams.threshold}
