"""DeepNovo/Casanovo-style de novo peptide sequencing from MS2 spectra (issue 6)."""
