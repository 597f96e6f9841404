"""Many prompts: the refine loop over a benchmark or prompt file, resumable, shardable, pipelined.

    from phyt2v.batch import Batch, load_source
"""

from .runner import Batch, BatchSummary, batch_key, result_line, run_id_for
from .shards import Shard, distributed_shard, launched_world_size, parse_shard
from .sources import load_source

__all__ = ["Batch", "BatchSummary", "Shard", "batch_key", "distributed_shard", "launched_world_size",
           "load_source", "parse_shard", "result_line", "run_id_for"]
