"""The MLflow pyfunc flavour of every deepms model: ``mlflow models serve`` and ``load_model``.

The registered model holds the checkpoint as an artifact and names its predictor class in
``model_config``; loading rebuilds the predictor from the checkpoint alone, checks the stored
description (vocabulary, modification masses) against this code, and serves ``predict``. Imported
only when a model is logged or loaded (it imports MLflow).
"""

from typing import Any

import mlflow.pyfunc
import pandas as pd

from deepms.registry.predictor import ModelLoadError, Predictor, load_class


class DeepMSPyFunc(mlflow.pyfunc.PythonModel):
    """Wraps a task's :class:`Predictor`; the same object answers HTTP and ``deepms predict``."""

    predictor: "Predictor | None" = None

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        if "predictor" not in config or "checkpoint" not in (context.artifacts or {}):
            raise ModelLoadError(
                "not a deepms model: model_config lacks 'predictor' or artifacts lack 'checkpoint'"
            )
        predictor = load_class(config["predictor"]).from_checkpoint(context.artifacts["checkpoint"])
        predictor.check_description(config.get("description") or {})
        self.predictor = predictor

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.predictor is None:
            raise ModelLoadError("the deepms model was not loaded (load_context not called)")
        return self.predictor.predict(model_input, **(params or {}))
