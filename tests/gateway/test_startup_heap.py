"""A gateway process keeps the garbage collector off its hot path."""

from __future__ import annotations

import gc

from gateway.lifespan import YOUNG_COLLECTION_AT, freeze_startup_heap


def test_the_young_generation_is_collected_rarely_and_start_up_is_frozen() -> None:
    before = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_threshold() == (YOUNG_COLLECTION_AT, before[1], before[2])
        assert gc.get_freeze_count() > 0
        # A request's worth of short-lived containers, freed by reference counting,
        # runs no collection at all.
        collections = sum(s["collections"] for s in gc.get_stats())
        for _ in range(20):
            junk = [{"k": [i]} for i in range(500)]
            del junk
        assert sum(s["collections"] for s in gc.get_stats()) == collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
