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
    python3-venv python3-pip       # the Python suites' virtualenvs (syft-job, selenium from PyPI); uv below
    iproute2                       # network tests inspect interfaces
    golang-github-containers-common # Podman/Docker's seccomp profile, loaded by a test
    bubblewrap hyperfine wrk       # the benchmarks' baseline, timer and HTTP load
    bpftrace                       # bench/phases.sh: a launch's phases from kernel tracepoints
    chromium chromium-driver       # the dashboard's browser test (headless, through Selenium)
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
# uv, from PyPI (pinned): what syft-job's python jobs run. With it present,
# the interop test shows such a job failing for want of a network, not of uv.
if ! command -v uv >/dev/null; then
    download="$(mktemp -d)"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$download" "uv==0.13.9"
    python3 - "$download" <<'PY'
import glob, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "uv-*.whl"))[0])
for name in wheel.namelist():
    if name.endswith(".data/scripts/uv"):
        target = "/usr/local/bin/uv"
        with wheel.open(name) as source, open(target + ".tmp", "wb") as output:
            output.write(source.read())
        os.chmod(target + ".tmp", 0o755)
        os.rename(target + ".tmp", target)
PY
    rm -rf "$download"
fi
echo "dependencies ready"
