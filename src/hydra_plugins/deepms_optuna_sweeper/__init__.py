"""deepms's Hydra sweeper on Optuna 5 (``hydra/sweeper=deepms_optuna``, chosen by ``sweep=<task>``).

Hydra imports every module under ``hydra_plugins`` at start-up, ``--help`` included, so this
package imports nothing heavier than Hydra itself; Optuna and MLflow load when a sweep starts.
"""
