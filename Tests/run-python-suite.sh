#!/usr/bin/env bash
# Runs one of the Python test suites (Tests/Interop, Tests/API) against the
# binary, in a virtualenv made from the suite's requirements.txt.
#
#   bash Tests/run-python-suite.sh SUITE_DIR [pytest arguments]
#
# SYFT_SANDBOX_RUN   the binary (default: .build/release/syft-sandbox-run)
# SUITE_VENV         the virtualenv, made and kept between runs (default:
#                    /tmp/syft-sandbox-run-venv-SUITE); rebuilt when
#                    requirements.txt or the Python changes
# PYTHON             the Python that makes it (default: /usr/bin/python3)
set -euo pipefail
suite="$(cd "$1" && pwd)"
shift
name="$(basename "$suite" | tr 'A-Z' 'a-z')"
repo="$(cd "$(dirname "$0")/.." && pwd)"
export SYFT_SANDBOX_RUN="${SYFT_SANDBOX_RUN:-$repo/.build/release/syft-sandbox-run}"
venv="${SUITE_VENV:-/tmp/syft-sandbox-run-venv-$name}"
python="${PYTHON:-/usr/bin/python3}"
[[ -x "$python" ]] || python="$(command -v python3)"

if [[ ! -x "$SYFT_SANDBOX_RUN" ]]; then
    echo "$name: no syft-sandbox-run at $SYFT_SANDBOX_RUN (build it, or set SYFT_SANDBOX_RUN)" >&2
    exit 1
fi

# The virtualenv, keyed by the requirements and the interpreter.
stamp="$(cat "$suite/requirements.txt" <("$python" -c 'import sys; print(sys.version, sys.executable)') | sha256sum | cut -c1-16)"
if [[ "$(cat "$venv/.suite-stamp" 2>/dev/null)" != "$stamp" ]]; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "$name: cannot create a virtualenv with $python (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$suite/requirements.txt"
    echo "$stamp" > "$venv/.suite-stamp"
fi

export PYTHONDONTWRITEBYTECODE=1  # nothing written into the repository
log="$(mktemp /tmp/syft-suite-pytest.XXXXXX)"
trap 'rm -f "$log"' EXIT
status=0
# -p no:cacheprovider: write nothing into the repository.
"$venv/bin/python" -m pytest -p no:cacheprovider -rfEs "$suite" "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
summary="$(grep -E '(passed|failed|error|errors|skipped|deselected|no tests ran).* in [0-9.]+s' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')"
echo "$name: ${summary:-no pytest summary} (binary: $SYFT_SANDBOX_RUN)"
if [[ $status -eq 5 ]]; then
    echo "$name: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
