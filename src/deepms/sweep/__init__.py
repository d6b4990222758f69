"""Hyperparameter sweeps on Optuna 5, driven by deepms's own Hydra sweeper.

``python train.py -m task=<task> sweep=<task>`` runs one Optuna study: the search space comes from
``conf/sweep/<task>.yaml``, every trial is an ordinary tracked run nested under the sweep's MLflow
run, a pruning callback stops poor trials, and several workers can share one study's budget
through a common storage. Nothing here is imported until a sweep starts.
"""
