"""The two switches of the fast paths, which a fit reads from the environment when it starts.

``SK_STACKAE_FAST_STEP=0`` trains every phase through autograd instead of
the hand-derived step; ``SK_STACKAE_CUDA_GRAPHS=0`` runs every GPU step
eagerly instead of replaying CUDA graphs. Neither changes what is computed,
only how; they exist to compare the paths and to rule one out when
something goes wrong (see "How it is fast" in the documentation).
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Acceleration:
    """Which fast paths a fit may take where they apply."""

    hand_derived_step: bool = True
    cuda_graphs: bool = True


def acceleration_from_environment(environment=None):
    """The :class:`Acceleration` that ``SK_STACKAE_FAST_STEP`` and ``SK_STACKAE_CUDA_GRAPHS`` ask for."""
    environment = os.environ if environment is None else environment
    return Acceleration(
        hand_derived_step=environment.get("SK_STACKAE_FAST_STEP", "1") != "0",
        cuda_graphs=environment.get("SK_STACKAE_CUDA_GRAPHS", "1") != "0",
    )
