"""deepiso: peptide feature detection in LC-MS1 maps (DeepIso, Zohora et al. 2019), issue 16.

Foundations here: the map simulator with exact labels (:mod:`.simulate`) and the evaluation
matcher (:mod:`.matching`); the map reader and feature writers live in ``deepms.io`` (``ms1map``,
``features``) because other tasks and ``deepms predict`` read and write the same formats.
"""
