#!/bin/bash
# Counts the words of this script and writes a small report into outputs/.
set -euo pipefail
words=$(wc -w < script.sh)
mkdir -p outputs
printf '{"words": %d, "user": "%s", "host": "%s"}\n' "$words" "$(id -u)" "$(hostname)" > outputs/report.json
echo "wrote outputs/report.json ($words words counted)"
echo "a line on stderr" >&2
