"""The engine under every face: a batch of generations run, recorded and presented once.

:mod:`.intents` (what is run, recorded before anything is sent), :mod:`.runner` (running it),
:mod:`.outcomes` (how each item ends in the store), :mod:`.views` (presenting it), :mod:`.jobs`
(background jobs of the process).
"""

from .collect import server_canceller
from .intents import (
    Batch,
    Cached,
    Intent,
    Item,
    lost_answers,
    on_their_way,
    prepare,
    reusable_samples,
    stored_answers,
    unfinished_item,
    unfinished_items,
)
from .runner import ItemEvent, run_batch, wait_for_starts
from .views import BatchView, CallbackView, run_in_view

__all__ = [
           "Batch",
           "BatchView",
           "Cached",
           "CallbackView",
           "Intent",
           "Item",
           "ItemEvent",
           "lost_answers",
           "on_their_way",
           "prepare",
           "reusable_samples",
           "run_batch",
           "run_in_view",
           "server_canceller",
           "stored_answers",
           "unfinished_item",
           "unfinished_items",
           "wait_for_starts",
]
