#!/usr/bin/env bash
# Installs exactly what chainz needs from Debian's archive, if it is not there yet.
# Runs apt-get as root (directly, or through sudo when available).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libblis-dev liblapack-dev libopenmpi-dev openmpi-bin
      libhdf5-dev hdf5-tools libcmocka-dev libgsl-dev python3 gnuplot-nox
      protobuf-c-compiler libprotobuf-c-dev python3-onnx python3-numpy python3-h5py
      dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "chainz setup: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
