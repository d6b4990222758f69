"""DeepLoc as a predictor: protein FASTA in, localisation and membrane probabilities out.

``deepms predict MODEL --input proteins.fasta --output loc.csv`` writes per protein ``id``,
``length``, the predicted ``location``, its probability, one ``p_<class>`` column per class and
``p_membrane`` (probability of being membrane-bound).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from deepms.metrics.classification import safe_name
from deepms.sequences.predict import SequencePredictor


class DeepLocPredictor(SequencePredictor):
    """A loaded :class:`DeepLocModel`."""

    model_class: ClassVar[str] = "deepms.tasks.deeploc.model.DeepLocModel"

    @property
    def classes(self) -> list[str]:
        return list(self.model.hparams.classes)

    def output_columns(self) -> tuple[str, ...]:
        per_class = tuple(f"p_{safe_name(c)}" for c in self.classes)
        return ("location", "p_location", *per_class, "p_membrane")

    def outputs(self, x: Any, mask: Any) -> dict[str, np.ndarray]:
        out = self.model(x, mask)
        probabilities = out["location"].float().softmax(-1).numpy()
        best = probabilities.argmax(-1)
        columns: dict[str, np.ndarray] = {
            "location": np.asarray(self.classes, dtype=object)[best],
            "p_location": probabilities.max(-1),
        }
        for index, name in enumerate(self.classes):
            columns[f"p_{safe_name(name)}"] = probabilities[:, index]
        columns["p_membrane"] = out["membrane"].float().sigmoid().numpy()
        return columns
