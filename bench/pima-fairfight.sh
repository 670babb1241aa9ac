#!/usr/bin/env bash
# The full Pima "Fair Fight" study of docs/PROTOCOL.md (bench/pima-fairfight.json): links
# weka's diabetes.arff (launch/weka-examples.sh) to bench/pima/diabetes.arff, where the spec
# expects it, and runs `chainz protocol` on it. Extra arguments go to chainz protocol
# (--jobs N, --report, --slurm --submit, --list). The report: runs/pima-fairfight/report.md.
#   bash bench/pima-fairfight.sh [--jobs 2]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
chainz=${CHAINZ:-$top/build/chainz}
[ -x "$chainz" ] || { echo "pima-fairfight.sh: build chainz first (cmake --build build), or set CHAINZ" >&2; exit 1; }
dir=$(bash "$top/launch/weka-examples.sh")
mkdir -p "$top/bench/pima"
ln -sfn "$dir/diabetes.arff" "$top/bench/pima/diabetes.arff"
exec "$chainz" protocol "$top/bench/pima-fairfight.json" "$@"
