#!/usr/bin/env bash
# Installs the Debian packages Kestrel needs. Idempotent: when everything is present it only
# asks dpkg and returns in well under a second. Run as root (or with sudo available).
set -euo pipefail

packages=(
    pkg-config             # finds OpenBLAS and zlib for the system-library targets
    libopenblas-dev        # BLAS (cblas_sgemm) with the dynamic-architecture kernels
    liblapacke-dev         # LAPACKE (QR for orthogonal initialisers)
    zlib1g-dev             # gzip'd IDX dataset files
    dataset-fashion-mnist  # the full Fashion-MNIST data in /usr/share/datasets/fashion-mnist
    graphviz               # `dot`, for plotModel pictures (SVG, PNG)
    libhdf5-dev            # HDF5 for Keras `.weights.h5` files inside `.keras` archives (KestrelKeras)
    libpng-dev             # PNG decoding for image folders (KestrelDatasets)
    libjpeg-dev            # JPEG decoding (libjpeg-turbo) for image folders (KestrelDatasets)
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all system packages present (${packages[*]})"
    exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "setup: need root to install ${missing[*]}; run this script as root" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
