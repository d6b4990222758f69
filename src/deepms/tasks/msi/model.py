"""Parametric t-SNE of MSI pixels (Inglese et al. 2017) as a deepms task model.

Training: each batch's input affinities are calibrated to the requested perplexity (binary search
per point, :mod:`deepms.tasks.msi.tsne`) and the encoder minimises KL(P || Q). Validation: the
same loss on fixed val batches (``val_kl``, the checkpoint monitor). Test: the encoder embeds the
held-out block (timed, pixels/s) and :func:`deepms.tasks.msi.evaluate.evaluate` scores it against
PCA, openTSNE and UMAP on the same pixels; k-means on the embedding gives the segments; the
pictures (TIC and H&E, ion images, embedding RGB, segment maps, split) go to ``plots/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from deepms.tasks.msi.tsne import Encoder, joint_affinities, tsne_kl
from deepms.training.module import TaskModule

log = logging.getLogger(__name__)


class ParametricTSNEModel(TaskModule):
    """MLP encoder spectrum -> 2 or 3 coordinates, trained with the t-SNE loss."""

    def __init__(
        self,
        n_features: int,
        mz: Sequence[float],
        preprocessing: dict[str, Any],
        n_components: int = 3,
        hidden_sizes: Sequence[int] = (256, 256),
        perplexity: float = 30.0,
        dof: float = 1.0,
        n_segments: int = 6,
        k_neighbors: int = 10,
        eval_max_pixels: int = 5000,
        anchors: Sequence[str] = ("pca", "opentsne", "umap"),
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        if len(mz) != n_features:
            raise ValueError(f"{len(mz)} m/z values for {n_features} features")
        if n_components not in (2, 3):
            raise ValueError("n_components: 2 or 3")
        self.save_hyperparameters()
        self.encoder = Encoder(n_features, list(hidden_sizes), int(n_components))
        self._p_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def _affinities(self, stage: str, batch_idx: int, x: torch.Tensor, rows: torch.Tensor):
        """P of a batch, computed once: the loaders cycle through fixed batches (van der Maaten
        2009 precomputes P per batch the same way), so the perplexity search, the costly part,
        runs once per batch instead of once per batch and epoch."""
        key = (stage, batch_idx, int(rows[0]), int(rows[-1]))
        cached = self._p_cache.get(key)
        if cached is not None and torch.equal(cached[0], rows.cpu()):
            return cached[1].to(x.device)
        perplexity = min(float(self.hparams.perplexity), (len(x) - 1) / 3)
        with torch.no_grad():
            p = joint_affinities(x, perplexity)
        self._p_cache[key] = (rows.cpu().clone(), p.cpu())
        return p

    def _loss(self, batch: Sequence[torch.Tensor], batch_idx: int, stage: str) -> torch.Tensor:
        p = self._affinities(stage, batch_idx, batch[0], batch[1])
        return tsne_kl(p, self(batch[0]), float(self.hparams.dof))

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch, batch_idx, "train")
        self.log("train_kl", loss, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        if len(batch[0]) > 10:  # a short last batch has no meaningful perplexity
            self.log("val_kl", self._loss(batch, batch_idx, "val"), batch_size=len(batch[0]))

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        if len(batch[0]) > 10:
            self.log("test_kl", self._loss(batch, batch_idx, "test"), batch_size=len(batch[0]))

    @torch.no_grad()
    def embed(self, features: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Coordinates of preprocessed spectra (eval mode; batch norm uses its running stats)."""
        was = self.training
        self.eval()
        out = [
            self(torch.from_numpy(features[i : i + batch_size]).to(self.device)).cpu().numpy()
            for i in range(0, len(features), batch_size)
        ]
        self.train(was)
        return np.concatenate(out) if out else np.zeros((0, self.hparams.n_components))

    def on_test_epoch_end(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or getattr(datamodule, "section", None) is None:
            return
        metrics = self.evaluate_section(datamodule)
        self.log_dict({f"test_{k}": v for k, v in metrics.items()})

    def evaluate_section(self, dm: Any) -> dict[str, float]:
        """Held-out block against the anchors, whole-section segments, and the pictures."""
        from deepms.tasks.msi.evaluate import evaluate, kmeans, spatial_coherence

        section, parts, features = dm.section, dm.parts, dm.features
        test = np.flatnonzero(parts == "test")
        start = time.perf_counter()
        embedded_test = self.embed(features[test])
        seconds = time.perf_counter() - start
        h = self.hparams
        seed = int(dm.split_seed)
        metrics, extra = evaluate(
            features[test],
            embedded_test,
            (section.x[test], section.y[test]),
            features[parts == "train"],
            seconds,
            k_neighbors=int(h.k_neighbors),
            n_segments=int(h.n_segments),
            max_pixels=int(h.eval_max_pixels),
            perplexity=float(h.perplexity),
            anchors=tuple(h.anchors),
            seed=seed,
        )
        # the whole section: deepms's encoder and PCA (both parametric) at the same k
        whole = self.embed(features)
        segments = {"deepms": kmeans(whole, int(h.n_segments), seed)}
        if "pca" in h.anchors:
            from sklearn.decomposition import PCA

            pca = PCA(n_components=int(h.n_components), random_state=seed)
            pca.fit(features[parts == "train"])
            segments["pca"] = kmeans(pca.transform(features), int(h.n_segments), seed)
        for name, seg in segments.items():
            metrics[f"section_{name}_coherence"] = spatial_coherence(section.x, section.y, seg)
        if self.trainer.is_global_zero and self.loggers:
            self._pictures(dm, whole, segments, extra)
        return metrics

    def _pictures(self, dm: Any, whole: np.ndarray, segments: dict, extra: dict) -> None:
        from deepms.tasks.msi import pictures
        from deepms.tasks.msi.preprocess import normalize_rows
        from deepms.tracking.mlflow_setup import log_figure

        s, loggers = dm.section, self.loggers
        log_figure(loggers, pictures.tic_and_he(s.x, s.y, s.tic, dm.he_image), "plots/tic_he.png")
        chosen = dm.annotations[: dm.ion_images] or _top_bins(s, dm.ion_images)
        normed = normalize_rows(s.intensities, "tic")
        log_figure(
            loggers, pictures.ion_images(s.x, s.y, normed, s.mz, chosen), "plots/ion_images.png"
        )
        title = f"parametric t-SNE ({self.hparams.n_components}-D) as RGB, whole section"
        log_figure(
            loggers, pictures.embedding_rgb(s.x, s.y, whole, title), "plots/embedding_rgb.png"
        )
        k = self.hparams.n_segments
        named = {f"{n} + k-means (k={k})": v for n, v in segments.items()}
        log_figure(loggers, pictures.segment_maps(s.x, s.y, named), "plots/segments_section.png")
        test = np.flatnonzero(dm.parts == "test")[extra["rows"]]
        held = {
            f"{n} (test block)": extra[f"seg_{n}"]
            for n in ("deepms", "pca", "opentsne", "umap")
            if f"seg_{n}" in extra
        }
        log_figure(
            loggers,
            pictures.segment_maps(s.x[test], s.y[test], held),
            "plots/segments_test_block.png",
        )
        log_figure(loggers, pictures.split_map(s.x, s.y, dm.parts), "plots/split.png")

    def predict_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> dict[str, Any]:
        """Per-pixel coordinates (row index of the section and the embedding)."""
        emb = self(batch[0])
        out: dict[str, Any] = {"row": batch[1]}
        for j in range(emb.shape[1]):
            out[f"tsne_{j + 1}"] = emb[:, j]
        return out


def _top_bins(section: Any, n: int) -> list[tuple[str, float]]:
    """Without annotated m/z: the ``n`` bins of highest mean intensity."""
    order = np.argsort(-section.intensities.mean(0))[:n]
    return [(f"m/z {section.mz[j]:.3f} (top mean)", float(section.mz[j])) for j in order]
