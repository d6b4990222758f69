"""FASTA (plain, gzip), labelled headers, DeepBind .seq tables and the no-label error."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from deepms.errors import DataFormatError
from deepms.io import SequenceRecord, clip_label, read_fasta, read_seq_table, write_fasta
from deepms.tasks.deeploc.data import deeploc_label

DEEPLOC = """>Q9H400 Cell.membrane-M test
MGLPVSWAPP
ALWVLGCCAL
>P83456 Nucleus-U
MKTAYIAKQR
"""
CLIP = """> chr1,+,69315,69415; class:0
ACTGACTTTT
> chr1,+,949021,949121; class:1
GGUACNACGT
"""


def write(path: Path, text: str, gz: bool = False) -> Path:
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def test_labelled_fasta_headers(tmp_path: Path) -> None:
    records = list(read_fasta(write(tmp_path / "d.fasta", DEEPLOC), deeploc_label, "protein"))
    assert [r.identifier for r in records] == ["Q9H400", "P83456"]
    assert records[0].sequence == "MGLPVSWAPPALWVLGCCAL"  # lines joined
    assert records[0].label == ("Cell.membrane", 1) and records[1].label == ("Nucleus", -1)


def test_gzipped_clip_fasta(tmp_path: Path) -> None:
    path = write(tmp_path / "c.fa.gz", CLIP, gz=True)
    records = list(read_fasta(path, clip_label, "rna"))
    assert [r.label for r in records] == [0, 1]
    assert records[0].identifier == "chr1,+,69315,69415"


def test_record_without_label_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "nolabel.fasta", DEEPLOC + ">P99999\nMKV\n")
    with pytest.raises(DataFormatError) as caught:
        list(read_fasta(path, deeploc_label))
    error = caught.value
    assert error.path == str(path) and error.record == "#3 (P99999)"
    assert "no label" in str(error) and "Location-M|S|U" in str(error)
    clip = write(tmp_path / "c.fa", "> chr2,+,1,101\nACGT\n")
    with pytest.raises(DataFormatError, match=r"c\.fa: record #1 .*no label.*class:<0\|1>"):
        list(read_fasta(clip, clip_label))


def test_bad_letters_and_empty_records_raise_or_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.fasta", ">a\nMK1V\n>b\n\n>c\nMKV\n")
    with pytest.raises(DataFormatError, match=r"record #1 \(a\).*\['1'\]"):
        list(read_fasta(path, alphabet="protein"))
    kept = list(read_fasta(path, alphabet="protein", on_error="skip"))
    assert [r.identifier for r in kept] == ["c"]


def test_deepbind_seq_table(tmp_path: Path) -> None:
    text = "FoldID\tEventID\tseq\tBound\nA\tseq_1_peak\tACGTN\t1\nA\tseq_2_shuf\tTTGCA\t0\n"
    records = list(read_seq_table(write(tmp_path / "x_B.seq.gz", text, gz=True)))
    assert [(r.identifier, r.sequence, r.label) for r in records] == [
        ("seq_1_peak", "ACGTN", 1),
        ("seq_2_shuf", "TTGCA", 0),
    ]
    bad = write(tmp_path / "y.seq", "FoldID\tEventID\tseq\tBound\nA\ts1\tACGT\t\n")
    with pytest.raises(DataFormatError, match=r"record #1 \(s1\): no label"):
        list(read_seq_table(bad))


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    records = [SequenceRecord("p1", "MKTAYIAKQR" * 10, "p1 Nucleus-S")]
    path = write_fasta(records, tmp_path / "out.fasta")
    again = list(read_fasta(path, deeploc_label))
    assert again[0].sequence == records[0].sequence and again[0].label == ("Nucleus", 0)


def test_real_mirror_files_read_completely(mirror: Path) -> None:
    deeploc = list(read_fasta(mirror / "deeploc" / "setHARD.fasta", deeploc_label, "protein"))
    assert len(deeploc) == 490
    encode = mirror / "nucleic_binding" / "deepbind_encode_MYC_H1-hESC_c-Myc_Stanford_B.seq.gz"
    labels = [r.label for r in read_seq_table(encode)]
    assert len(labels) == 1000 and sum(labels) == 500


def test_alphabets_live_below_io_and_sequences_re_exports_them() -> None:
    import subprocess
    import sys

    import deepms.chem.alphabets as alphabets
    from deepms import sequences

    assert sequences.PROTEIN is alphabets.PROTEIN and sequences.get_alphabet("rna") is alphabets.RNA
    code = "import sys, deepms.io.fasta; print(sorted(m for m in sys.modules if 'sequences' in m))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"  # the FASTA reader no longer pulls in deepms.sequences


def test_one_fasta_suffix_list_for_every_reader(tmp_path: Path) -> None:
    from deepms.io import formats, precursors
    from deepms.io.formats import FASTA_SUFFIXES, get_format
    from deepms.sequences import predict

    assert predict.FASTA_SUFFIXES is FASTA_SUFFIXES and precursors.FASTA_SUFFIXES is FASTA_SUFFIXES
    assert get_format("fasta").suffixes == FASTA_SUFFIXES and ".fna.gz" in formats.FASTA_SUFFIXES
    # the digest reads FASTA through read_fasta: lower case folded, empty records skipped
    path = write(
        tmp_path / "proteins.fna.gz", ">empty\n>p1 x\nmkwvtfisllfr\n>p2\nGSHMLEDPVAGK\n", gz=True
    )
    chunks = precursors.read_precursors(path, chunk_size=100)
    peptides = sorted(set(next(chunks)["peptide"]))
    assert peptides == ["GSHMLEDPVAGK", "MKWVTFISLLFR", "WVTFISLLFR"]
