"""deepbind: DNA/RNA binding specificity (DeepBind, Alipanahi et al. 2015)."""
