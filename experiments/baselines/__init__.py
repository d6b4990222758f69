"""Simple baselines beside the models, one module per kind of task.

Each baseline is ``function(datamodule) -> {metric: value}``: it fits on the datamodule's own
train split, scores its test split(s), and names its figures as the task's model does
(``test_*``, from :mod:`deepms.metrics`), so a study's table compares like with like.
Studies name them in ``study.yaml`` as ``baselines.<module>:<function>``.
"""
