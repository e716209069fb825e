# The baseline every launch benchmark compares with (sourced by bench.sh and
# phases.sh): bubblewrap with the namespaces syft-sandbox-run makes, the
# host's /usr read-only, fresh /proc, /dev and /tmp, the job folder
# read-only at /job.
#
#   bwrap_command JOB_FOLDER [EXTRA_OPTIONS]   prints the command line
bwrap_command() {
    echo "bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/lib /lib" \
        "--symlink usr/lib64 /lib64 --symlink usr/bin /bin --proc /proc --dev /dev --tmpfs /tmp" \
        "--ro-bind $1 /job ${2:-} --chdir /job bash run.sh"
}
