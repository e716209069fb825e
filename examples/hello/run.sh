#!/bin/bash
# An example job: reads its code, writes an output file, logs to stdout.
set -euo pipefail
echo "hello from ${SYFT_JOB_NAME} (job ${SYFT_JOB_ID})"
cd code
bash script.sh
