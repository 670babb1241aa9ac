#!/usr/bin/env bash
# Prints the directory holding Debian's weka example data sets (diabetes.arff = Pima
# Diabetes, ReutersCorn-train.arff / -test.arff, ...), fetching them if needed.
#
#   dir=$(bash launch/weka-examples.sh [CACHE_DIR])
#
# With the weka package installed: /usr/share/doc/weka/examples. Otherwise the weka .deb is
# fetched from Debian's archive (apt-get download, no Java installed) and only its examples
# are unpacked into CACHE_DIR (default: data/weka-examples next to launch/); a second call
# reuses them. Exit status 1 with a message when the archive cannot be reached.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sys=/usr/share/doc/weka/examples
if [ -f "$sys/diabetes.arff" ] || [ -f "$sys/diabetes.arff.gz" ]; then echo "$sys"; exit 0; fi
cache=${1:-$top/data/weka-examples}
if [ -f "$cache/diabetes.arff" ] && [ -f "$cache/.complete" ]; then echo "$cache"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
if ! (cd "$tmp" && apt-get download weka >/dev/null 2>&1); then
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    (cd "$tmp" && apt-get download weka >/dev/null 2>&1) ||
        { echo "weka-examples.sh: cannot fetch Debian's weka package (apt-get download weka)" >&2; exit 1; }
fi
dpkg-deb --fsys-tarfile "$tmp"/weka_*.deb | tar -x -C "$tmp" ./usr/share/doc/weka/examples
mkdir -p "$cache"
for f in "$tmp"/usr/share/doc/weka/examples/*; do
    b=$(basename "$f")
    case "$b" in *.gz) gzip -dc "$f" >"$cache/${b%.gz}.part" && mv "$cache/${b%.gz}.part" "$cache/${b%.gz}" ;;
                 *) cp "$f" "$cache/$b.part" && mv "$cache/$b.part" "$cache/$b" ;; esac
done
touch "$cache/.complete"
echo "$cache"
