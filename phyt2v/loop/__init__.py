"""The PhyT2V algorithm for one run: the ``Refiner`` and the steps it drives.

    from phyt2v.loop import Refiner
"""

from .enhancers import EnhanceResult
from .refiner import Event, Refiner, RefineResult
from .rounds import best_round, stop_reason
from .run import validate_prompt

__all__ = ["EnhanceResult", "Event", "RefineResult", "Refiner", "best_round", "stop_reason", "validate_prompt"]
