"""Start a dask cluster on SLURM for ``cellsight segment|denoise --scheduler ADDRESS``.

Run it on the cluster's login node (``pip install "cellsight[cluster]"`` there), leave it
running, and pass the address it prints to cellsight from the same login node:

    python slurm_cluster.py --jobs 8 --gpus 1 &
    cellsight segment --model nuclei --scheduler tcp://10.0.0.5:8786 \\
        --out /shared/plate_labels /shared/plate/*.tif

Every job is one worker on one node; the input and output folders must be on a file
system that every node sees. PBS / LSF: swap ``SLURMCluster`` for ``PBSCluster`` /
``LSFCluster`` (same arguments).
"""

import argparse
import time


def make_cluster(jobs: int = 4, cores: int = 8, memory: str = "32GB", gpus: int = 0,
                 queue: str | None = None, walltime: str = "04:00:00", submit: bool = True):
    """A dask-jobqueue SLURMCluster with one cellsight worker per job."""
    from dask_jobqueue import SLURMCluster

    extra = [f"--gres=gpu:{gpus}"] if gpus else []
    cluster = SLURMCluster(
        cores=cores,            # threads the worker's torch may use
        processes=1,            # one worker process per job: one model in memory
        memory=memory,
        queue=queue,
        walltime=walltime,
        job_extra_directives=extra,
        worker_extra_args=["--nthreads", "1"],  # one block at a time per worker
        scheduler_options={"dashboard_address": None},
    )
    if submit:
        cluster.scale(jobs=jobs)
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="SLURM jobs (= workers).")
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--memory", default="32GB")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per job.")
    parser.add_argument("--queue", help="SLURM partition.")
    parser.add_argument("--walltime", default="04:00:00")
    args = parser.parse_args()
    cluster = make_cluster(args.jobs, args.cores, args.memory, args.gpus, args.queue,
                           args.walltime)
    print(cluster.job_script())
    print(f"Scheduler: {cluster.scheduler_address}  (Ctrl-C to stop the cluster)", flush=True)
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()
