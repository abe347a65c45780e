"""Which process of a distributed job this is, without importing anything heavy (the sweep's tracking process is
started ahead by `train.py` before numpy and pandas are imported: mediaml.tracking.agent.start_ahead)."""
from __future__ import annotations

import os


def distributed_rank() -> int:
    """This process's rank in a distributed job; 0 outside one. RANK (torchrun, Lightning's ranks), SLURM_PROCID
    (srun's tasks: Lightning's SLURMEnvironment), then LOCAL_RANK and NODE_RANK (Lightning's launcher run on
    each node by hand): only the process where all are 0 (or unset) tracks the job."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(var, "").strip()
        if value and value != "0":
            return int(value)
    return 0
