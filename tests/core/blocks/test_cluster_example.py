"""The SLURM example in docs/examples builds a valid cluster description (no jobs submitted)."""

import importlib.util

import pytest


def test_slurm_example_writes_a_job_script(repo_root):
    pytest.importorskip("dask_jobqueue")
    spec = importlib.util.spec_from_file_location(
        "slurm_cluster", repo_root / "docs" / "examples" / "slurm_cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cluster = module.make_cluster(jobs=2, cores=4, memory="8GB", gpus=1, submit=False)
    try:
        script = cluster.job_script()
        assert "#SBATCH" in script and "--gres=gpu:1" in script
        assert "distributed.cli.dask_worker" in script or "dask-worker" in script
        assert cluster.scheduler_address.startswith("tcp://")
    finally:
        cluster.close()
