"""Protein and nucleic-acid sequences for sequence tasks: alphabets with a stated rule for
non-standard letters, encodings (one-hot, indices, property channels), length handling,
similarity-grouped splits and dinucleotide shuffling. Torch and Lightning live in
``sequences.dataset`` / ``sequences.datamodule``, imported only by the tasks that train."""

from deepms.chem.alphabets import DNA, PROTEIN, RNA, Alphabet, get_alphabet
from deepms.sequences.encoding import CROP_MODES, ENCODINGS, SequenceEncoder, crop, pad_batch
from deepms.sequences.properties import DEFAULT_PROPERTIES, SCALES, property_channels
from deepms.sequences.shuffle import dinucleotide_counts, dinucleotide_shuffle
from deepms.sequences.similarity import (
    SimilaritySplit,
    cluster_keys,
    kmer_matrix,
    max_similarity,
    similar_pairs,
    similarity_clusters,
    similarity_split,
)

__all__ = [
    "CROP_MODES",
    "DEFAULT_PROPERTIES",
    "DNA",
    "ENCODINGS",
    "PROTEIN",
    "RNA",
    "SCALES",
    "Alphabet",
    "SequenceEncoder",
    "SimilaritySplit",
    "cluster_keys",
    "crop",
    "dinucleotide_counts",
    "dinucleotide_shuffle",
    "get_alphabet",
    "kmer_matrix",
    "max_similarity",
    "pad_batch",
    "property_channels",
    "similar_pairs",
    "similarity_clusters",
    "similarity_split",
]
