"""pdeep: MS2 fragment-intensity prediction (pDeep, Zhou et al. 2017, Anal Chem 89:12690)."""
