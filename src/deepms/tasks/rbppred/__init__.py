"""rbppred: RNA-binding protein prediction (Deep-RBPPred, Zheng et al. 2018)."""
