#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test
# syft-sandbox-run (run as root). Swift itself is expected at /opt/swift or
# on PATH.
set -euo pipefail
packages=(
    libseccomp-dev libcap-dev      # the C shim links libseccomp and libcap
    libsqlite3-dev                 # the daemon's history (GRDB)
    gcc libc6-dev                  # tests compile small static probes
    python3                        # jobs and test helpers use the host's /usr/bin/python3
    python3-venv                   # the interop tests' virtualenv (syft-job from PyPI)
    iproute2                       # network tests inspect interfaces
    golang-github-containers-common # Podman/Docker's seccomp profile, loaded by a test
    bubblewrap hyperfine           # the benchmark baseline and timer
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "dependencies ready"
