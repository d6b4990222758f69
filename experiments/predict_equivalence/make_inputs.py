"""Build the fixed prediction inputs in $WORK/inputs from the data mirror (deterministic).

Usage: python make_inputs.py WORK   (the mirror: $DEEPMS_DATA_MIRROR, else ../shared/data)
"""

import csv
import gzip
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
D = Path(os.environ.get("DEEPMS_DATA_MIRROR", ROOT.parent / "shared" / "data"))
OUT = Path(sys.argv[1]) / "inputs"
OUT.mkdir(parents=True, exist_ok=True)


def fasta(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    header, seq = None, []
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(seq)
                header, seq = line[1:], []
            elif line.strip():
                seq.append(line.strip())
    if header is not None:
        yield header, "".join(seq)


def write_fasta(path, records):
    with open(path, "w") as fh:
        for header, seq in records:
            fh.write(f">{header}\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")


# --- pdeep: 5 yeast proteins (150-400 aa, containing C and M), digested here for the precursor CSV
yeast = [
    (h, s)
    for h, s in fasta(D / "proteome/UP000002311_yeast_swissprot.fasta.gz")
    if 150 <= len(s) <= 400 and "C" in s and s.count("M") >= 3
]
proteins = yeast[:5]
write_fasta(OUT / "pdeep_proteins.fasta", proteins)

peptides = []
for _, seq in proteins:
    for pep in re.sub(r"(?<=[KR])(?!P)", " ", seq).split():
        if 7 <= len(pep) <= 25 and pep not in peptides:
            peptides.append(pep)
# prefer peptides with C or M, then fill
chosen = [p for p in peptides if "C" in p or "M" in p][:18]
chosen += [p for p in peptides if p not in chosen][: 30 - len(chosen)]
energies = ["25", "30", "", "27.5", "", "35"]
rows, rows_rt = [], []
for i, pep in enumerate(chosen):
    text = pep.replace("C", "C[Carbamidomethyl]")
    if "M" in pep and i % 2 == 0:
        j = pep.index("M")
        text_ox = text.replace("M", "M[Oxidation]", 1) if j >= 0 else text
    else:
        text_ox = text
    if i == 7:
        text_ox = "[Acetyl]-" + text_ox  # one N-terminal acetyl (in the pdeep vocabulary)
    charge = 1 + i % 4
    ce = energies[i % len(energies)]
    rows.append((text_ox, charge, ce))
    rows_rt.append((text, charge, ce))
for name, data in (("pdeep_precursors.csv", rows), ("pdeep_precursors_cam.csv", rows_rt)):
    with open(OUT / name, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["peptide", "charge", "collision_energy"])
        w.writerows(data)
# same precursors as TSV without the NCE column (tests the default path and TSV reading)
with open(OUT / "pdeep_precursors_nonce.tsv", "w") as fh:
    fh.write("peptide\tcharge\n")
    for text, charge, _ in rows:
        fh.write(f"{text}\t{charge}\n")

# --- deeprt: 50 peptides of DeepLC's test file; Cys written C[Carbamidomethyl] in some
rt = []
with open(D / "deeprt/deeplc_test_pred.csv") as fh:
    for r in csv.DictReader(fh):
        if not r["modifications"] and r["seq"] not in rt:
            rt.append(r["seq"])
rt = rt[:50]
with open(OUT / "deeprt_peptides.csv", "w", newline="") as fh:
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["peptide"])
    ncam = 0
    for p in rt:
        if "C" in p and ncam < 10:
            p = p.replace("C", "C[Carbamidomethyl]")
            ncam += 1
        w.writerow([p])
# extra: a peptide list with an oxidised M the tiny (unmodified) model cannot read: expected error
with open(OUT / "deeprt_oxidation.csv", "w") as fh:
    fh.write("peptide\nPEPTIDEK\nPEPM[Oxidation]TIDEK\n")


# --- deepnovo: 30 Casanovo sample spectra (every 4th) + 10 MassIVE-KB (every 50th), verbatim
def mgf_blocks(path):
    block = []
    with open(path) as fh:
        for line in fh:
            if line.startswith("BEGIN IONS"):
                block = [line]
            elif block:
                block.append(line)
                if line.startswith("END IONS"):
                    yield "".join(block)
                    block = []


cas = list(mgf_blocks(D / "deepnovo/casanovo_sample_preprocessed_spectra.mgf"))[::4][:30]
mkb = list(mgf_blocks(D / "pdeep/ms2pip_massivekb_selected_500.mgf"))[::50][:10]
with open(OUT / "deepnovo_spectra.mgf", "w") as fh:
    fh.write("\n".join(cas + mkb))

# --- deeploc / rbppred: 20 proteins: 10 DeepLoc test + 5 RBP + 5 non-RBP
prots = list(fasta(D / "deeploc/deeploc1_test_set.fasta"))[::250][:10]
prots += list(fasta(D / "nucleic_binding/rbppred_RBP2780.fasta"))[::500][:5]
prots += list(fasta(D / "nucleic_binding/rbppred_nonRBP7093.fasta"))[::1300][:5]
write_fasta(OUT / "proteins.fasta", prots)
with open(OUT / "proteins.csv", "w", newline="") as fh:  # table input: id + sequence
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["id", "sequence"])
    for h, s in prots:
        w.writerow([h.split()[0], s])

# --- deepbind: 50 MYC test sequences (25 bound, 25 unbound) as FASTA and as CSV
bound, unbound = [], []
with gzip.open(
    D / "nucleic_binding/deepbind_encode_MYC_H1-hESC_c-Myc_Stanford_B.seq.gz", "rt"
) as fh:
    for r in csv.DictReader(fh, delimiter="\t"):
        (bound if r["Bound"] == "1" else unbound).append((f"{r['EventID']}_{r['Bound']}", r["seq"]))
dna = bound[::20][:25] + unbound[::20][:25]
write_fasta(OUT / "dna.fasta", dna)
with open(OUT / "dna.csv", "w", newline="") as fh:
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["id", "sequence"])
    w.writerows(dna)
print(
    "pdeep",
    len(proteins),
    len(rows),
    "deeprt",
    len(rt),
    "mgf",
    len(cas),
    len(mkb),
    "prot",
    len(prots),
    "dna",
    len(dna),
)
