"""A batch's recommendations built on every core: a :class:`~spendsense_shared.process_pool.ProcessPool`
whose server imported the recommender's domain once.

In the worker's own process the building (selection with every eligibility check and guardrail, the
template texts, the traces and their sealing) shares one core's worth of Python with the event loop and
the database: for an upload's 1,502 users it kept one core busy for 14-16 s while the other had room. In
the pool a batch is cut into one run of users per process. What crosses: each user's
:class:`~spendsense_recommender.domain.recommend.BuildInput` (snapshot, facts, dismissed items, the end
of their trace chain), and back their ``RecommendationSet`` as JSON. Only the template writer builds
here: a model's texts are network calls, written concurrently in the worker
(:func:`~spendsense_recommender.handlers.recommend.in_process`).
"""

from __future__ import annotations

import asyncio

from spendsense_recommender.domain.recommend import BuildInput, RecommendationSet, build_with_templates
from spendsense_shared.process_pool import ProcessPool, start_pool_server

_PRELOAD = "spendsense_recommender.domain.recommend"


def start_build_server() -> None:
    """Start the pool's forkserver with the worker, in the background, rather than at the first batch."""
    start_pool_server(_PRELOAD)


class BuildPool(ProcessPool):
    """A :data:`~spendsense_recommender.handlers.recommend.Builder` with the template writer on
    ``processes`` processes (one per core by default), started at the first call."""

    def __init__(self, processes: int | None = None) -> None:
        super().__init__(_PRELOAD, processes)

    async def __call__(self, inputs: list[BuildInput]) -> list[RecommendationSet]:
        runs = [part for part in _runs(inputs, self.processes) if part]
        built = await asyncio.gather(*(self.run(build_with_templates, part) for part in runs))
        return [RecommendationSet.model_validate_json(result) for part in built for result in part]


def _runs(inputs: list[BuildInput], parts: int) -> list[list[BuildInput]]:
    """``inputs`` in ``parts`` runs of consecutive users, as even as can be (in order)."""
    n = len(inputs)
    return [inputs[k * n // parts : (k + 1) * n // parts] for k in range(parts)]
