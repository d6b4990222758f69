#!/usr/bin/env bash
# Build the peer environments (dia: PyProphet 3, mokapot 0.10; deepiso: Biosaur2): one virtual
# environment per envs/<name>/requirements.txt, under .venv-peers/<name>. They are separate from
# .venv because their pins conflict with it (and with each other: mokapot 0.10 and biosaur2 need
# numpy<2, PyProphet 3 resolves numpy 2 and pins pandas 2.2.3).
#
#   bash envs/setup.sh                 # all peers (pyprophet, mokapot, biosaur2)
#   bash envs/setup.sh mokapot         # one of them
#   PYTHON=python3.11 bash envs/setup.sh
#
# Idempotent: an environment whose marker file records the sha256 of its requirements file is
# left as it is; a missing, half-built or outdated one is rebuilt from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
PEERS_DIR="${DEEPMS_PEERS_DIR:-.venv-peers}"
MARKER=.deepms-peer-installed

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(pyprophet mokapot biosaur2)
fi

for name in "${names[@]}"; do
  req="envs/$name/requirements.txt"
  venv="$PEERS_DIR/$name"
  if [ ! -f "$req" ]; then
    echo "envs/setup.sh: no $req (known: $(ls envs | grep -v setup.sh | tr '\n' ' '))" >&2
    exit 2
  fi
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ -f "$venv/$MARKER" ] && [ "$(cat "$venv/$MARKER")" = "$want" ]; then
    echo "peer env $name: up to date ($venv)"
    continue
  fi
  echo "peer env $name: building $venv from $req"
  start=$(date +%s)
  rm -rf "$venv"
  mkdir -p "$PEERS_DIR"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null || {
    "$venv/bin/python" -m pip check --disable-pip-version-check >&2 || true
    echo "peer env $name: pip check failed" >&2
    exit 1
  }
  echo "$want" > "$venv/$MARKER"
  echo "peer env $name: built in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1)"
done
