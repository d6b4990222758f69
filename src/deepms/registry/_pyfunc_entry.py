"""Models-from-code entry for MLflow: the registered model's code is this file, not a pickle."""

from mlflow.models import set_model

from deepms.registry.pyfunc import DeepMSPyFunc

set_model(DeepMSPyFunc())
