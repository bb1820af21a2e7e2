"""The engine under every face: a batch of generations run, recorded and presented once."""

from .engine import (
    Batch,
    BatchView,
    Cached,
    Intent,
    Item,
    ItemEvent,
    lost_answers,
    prepare,
    run_batch,
    run_in_view,
    server_canceller,
    unfinished_item,
    unfinished_items,
    wait_for_starts,
)

__all__ = ["Batch", "BatchView", "Cached", "Intent", "Item", "ItemEvent", "lost_answers", "prepare", "run_batch",
           "run_in_view", "server_canceller", "unfinished_item", "unfinished_items", "wait_for_starts"]
