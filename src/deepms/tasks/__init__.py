"""One folder per task: a LightningDataModule (data.py), a LightningModule (model.py) and, where
the task serves predictions, a predictor (predict.py). Tasks use the core; never the reverse."""
