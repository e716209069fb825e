#!/bin/bash
# Builds a fuller root for `syft-sandbox-run --rootfs DIR` with debootstrap
# (Debian 12 by default), e.g. when jobs need packages the host lacks.
#
#   sudo rootfs/build-rootfs.sh /var/lib/syft-sandbox-run/rootfs [suite] [extra,packages]
#
# The result is an ordinary directory; the sandbox binds it read-only as the
# root and mounts /proc, /dev, /tmp and /job over it (the mount points are
# created here so that no overlay is needed).
set -euo pipefail
target=${1:?usage: build-rootfs.sh TARGET [SUITE] [PACKAGES]}
suite=${2:-bookworm}
packages=${3:-python3,ca-certificates}
if ! command -v debootstrap >/dev/null; then
    apt-get install -y debootstrap
fi
debootstrap --variant=minbase --include="$packages" "$suite" "$target"
mkdir -p "$target/job" "$target/proc" "$target/dev" "$target/tmp"
here=$(cd "$(dirname "$0")" && pwd)
cp "$here/etc/passwd" "$here/etc/group" "$here/etc/hosts" "$target/etc/"
echo "rootfs ready: $target"
