"""DeepRT's stack: classical regressors on the network's features (scaling + PCA, then a mean).

DeepRT (Ma et al. 2018, Anal Chem 90:10881) predicts retention time this way: CNN and RNN features,
PCA, then SVR, random forest and gradient boosting, combined. The stack is fitted on the training
part only (under CV: the fold's training rows) and pickles with the checkpoint (scikit-learn has
no weights-only format, so such checkpoints must come from a trusted source). Checkpoints written
before the stack moved here name ``deepms.training.stacking``; :func:`load_stack` reads both.
"""

from __future__ import annotations

import io
import logging
import pickle
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
MEMBERS = ("svr", "random_forest", "gradient_boosting")


class FeatureStack:
    """``fit(features, target)``, then ``predict`` gives each member's output and their mean."""

    def __init__(
        self,
        pca_components: int = 32,
        max_samples: int | None = None,
        seed: int = 0,
        **members: dict[str, Any] | None,
    ) -> None:
        unknown = set(members) - set(MEMBERS)
        if unknown:
            raise ValueError(f"unknown stack members {sorted(unknown)}; known: {MEMBERS}")
        self.pca_components = pca_components
        self.max_samples = max_samples
        self.seed = seed
        self.options = {name: dict(members.get(name) or {}) for name in MEMBERS}
        self.reduce: Any = None
        self.members: dict[str, Any] = {}

    def fit(self, features: np.ndarray, target: np.ndarray) -> FeatureStack:
        """Fit on at most ``max_samples`` rows (a fixed-seed subset: SVR is quadratic in n)."""
        from sklearn.decomposition import PCA
        from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR

        pick = np.random.default_rng(self.seed).permutation(len(target))[: self.max_samples]
        x, y = np.asarray(features)[pick], np.asarray(target)[pick]
        components = min(self.pca_components, *x.shape)
        self.reduce = make_pipeline(StandardScaler(), PCA(components, random_state=self.seed))
        reduced = self.reduce.fit_transform(x)
        self.members = {
            "svr": SVR(**self.options["svr"]),
            "random_forest": RandomForestRegressor(
                random_state=self.seed, **self.options["random_forest"]
            ),
            "gradient_boosting": GradientBoostingRegressor(
                random_state=self.seed, **self.options["gradient_boosting"]
            ),
        }
        for name, member in self.members.items():
            member.fit(reduced, y)
            log.info("fitted %s on %d samples x %d PCA components", name, *reduced.shape)
        return self

    def predict_members(self, features: np.ndarray) -> dict[str, np.ndarray]:
        if self.reduce is None:
            raise RuntimeError("FeatureStack.predict before fit")
        reduced = self.reduce.transform(np.asarray(features))
        return {name: member.predict(reduced) for name, member in self.members.items()}

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The members' mean (DeepRT combines its three regressors)."""
        return np.mean(list(self.predict_members(features).values()), axis=0)


#: where checkpoints written before issue 13 say the stack's classes live
_OLD_MODULE = "deepms.training.stacking"


class _StackUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(__name__ if module == _OLD_MODULE else module, name)


def load_stack(data: bytes) -> FeatureStack:
    """A pickled stack from a checkpoint (trusted files only), old module path included."""
    return _StackUnpickler(io.BytesIO(data)).load()
