# One local fork server per Snakemake run (eebench.worker): each job's `eebench` hands its command to it and skips
# the 1.3-1.8 s of importing torch and the rest. Local execution only (under SLURM a job runs in its allocation);
# EEBENCH_WORKER=off or --no-hooks runs every job in its own process, with the same results.
from eebench import worker as ee_worker

_local_worker = []


onstart:
    if workflow.local_exec and workflow.is_main_process:
        _local_worker.append(ee_worker.start(log=".snakemake/eebench-worker.log", run="eebench.cli:run"))


onsuccess:
    for server in filter(None, _local_worker):
        server.stop()


onerror:
    for server in filter(None, _local_worker):
        server.stop()
