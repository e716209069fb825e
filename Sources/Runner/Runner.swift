// Runner: job folders, results, artifacts, the SyftBox queue.
