"""Biomarker discovery from cohort proteomes (issue 14): data, in-fold steps, DBN, baselines."""
