"""deeprt: peptide retention time (DeepRT, Ma et al. 2018, Anal Chem 90:10881), with transfer."""
