#!/usr/bin/env bash
# Compare two run_predict.sh output folders.
#
#   bash compare.sh OUT_A OUT_B        (e.g. out_old out_new)
#
# 1. sha256: the two SHA256SUMS (files present in only one folder are reported).
# 2. For every file whose hash differs: if it differs ONLY in lines that NOTES.md lists as
#    ignorable, it is reported "same (ignoring ...)"; otherwise the first differing lines are shown
#    (parquet files are dumped as text first; MSP/TSV/CSV are compared line by line).
# Ignored (see NOTES.md): in .mztab files the `MTD software[1]` line and the software cell of PSM
# rows carry the installed deepms version (importlib.metadata), which a refactor may bump.
# Nothing else is ignored: every baseline output was byte-identical across two runs.
# Exit status: 0 when everything matches (modulo the ignored lines), 1 otherwise.
set -uo pipefail
export LC_ALL=C
if [ $# -ne 2 ]; then
  echo "usage: $0 OUT_A OUT_B" >&2
  exit 64
fi
A=$(cd "$1" && pwd) || exit 64
B=$(cd "$2" && pwd) || exit 64
PY=${PY:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}
SHOW=${SHOW:-8}   # differing lines shown per file

for d in "$A" "$B"; do
  [ -f "$d/SHA256SUMS" ] || { echo "$d/SHA256SUMS missing (run did not finish?)" >&2; exit 64; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# normalise a file to text with the ignorable bits replaced (only mzTab has any)
norm() {
  case "$1" in
    *.mztab)
      sed -E 's/^(MTD\tsoftware\[1\]\t).*/\1<deepms version>/; /^PSM\t/ s/\[, , deepms, [^]]*\]/[, , deepms, <version>]/' "$1" ;;
    *.parquet)
      "$PY" - "$1" <<'EOF'
import sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print("schema:", t.schema.to_string(show_schema_metadata=False))
print(t.to_pandas().to_csv(index=False), end="")
EOF
      ;;
    *) cat "$1" ;;
  esac
}

awk '{print $2}' "$A/SHA256SUMS" | sort > "$tmp/a.list"
awk '{print $2}' "$B/SHA256SUMS" | sort > "$tmp/b.list"
status=0
only_a=$(comm -23 "$tmp/a.list" "$tmp/b.list")
only_b=$(comm -13 "$tmp/a.list" "$tmp/b.list")
if [ -n "$only_a" ]; then echo "only in $A:"; echo "$only_a" | sed 's/^/  /'; status=1; fi
if [ -n "$only_b" ]; then echo "only in $B:"; echo "$only_b" | sed 's/^/  /'; status=1; fi

same=0 ignored=0 differ=0
join -j 2 <(sort -k2 "$A/SHA256SUMS") <(sort -k2 "$B/SHA256SUMS") > "$tmp/joined"
while read -r path ha hb; do
  if [ "$ha" = "$hb" ]; then
    same=$((same + 1))
    continue
  fi
  norm "$A/$path" > "$tmp/na" 2>&1
  norm "$B/$path" > "$tmp/nb" 2>&1
  if cmp -s "$tmp/na" "$tmp/nb"; then
    case "$path" in
      *.mztab) echo "same (ignoring the deepms version, NOTES.md): $path"; ignored=$((ignored + 1)); continue ;;
      *.parquet) echo "DIFFERS in parquet metadata/encoding only (same schema and values): $path" ;;
    esac
  else
    echo "DIFFERS: $path"
  fi
  differ=$((differ + 1))
  status=1
  # first differing lines (unified diff, no context)
  diff -U0 "$tmp/na" "$tmp/nb" | grep -v '^\(---\|+++\)' | head -n $((SHOW * 2 + 2)) | cut -c1-300 \
    | sed 's/^/    /'
  n=$(diff "$tmp/na" "$tmp/nb" | grep -c '^[<>]')
  echo "    ($n differing lines in all)"
done < "$tmp/joined"

echo "summary: $same identical, $ignored identical modulo NOTES.md, $differ different," \
  "$(echo -n "$only_a" | grep -c .) only in A, $(echo -n "$only_b" | grep -c .) only in B"
exit $status
