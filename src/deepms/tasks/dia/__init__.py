"""Neural scoring of DIA peak groups (OpenSWATH sub-scores) with target-decoy FDR (issue 15)."""
