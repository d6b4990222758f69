"""EpochSummary prints each epoch's own metrics, including those a module logs at epoch end."""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from deepms.training.callbacks import EpochSummary


class _EpochEndLogger(pl.LightningModule):
    """Logs val_epoch_tag = current epoch from on_validation_epoch_end (like decoded metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.layer(batch[0]).pow(2).mean())

    def on_validation_epoch_end(self) -> None:
        self.log("val_epoch_tag", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_epoch_summary_shows_metrics_of_the_same_epoch(caplog) -> None:
    loader = DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[EpochSummary()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with caplog.at_level(logging.INFO, logger="deepms.train"):
        trainer.fit(_EpochEndLogger(), loader, loader)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2
    assert "val_epoch_tag=0.0000" in lines[0] and lines[0].startswith("epoch 1/2")
    assert "val_epoch_tag=1.0000" in lines[1] and "train_loss=" in lines[1]
