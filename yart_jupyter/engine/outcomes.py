"""How an item ends in the store: a failure settled or left to collect, a cancelled batch's unsent intents.

One copy of each sequence, for the engine and for batch runs alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from ..core import errors
from ..core.steps import off_thread
from ..store import Store
from .intents import Intent

#: What an interrupted batch's never-sent generation is recorded as.
INTERRUPTED_UNSENT = "interrupted before it was sent"


#: Start failures after which the service may still have the generation (the answer was lost).
AMBIGUOUS = (errors.ServiceUnavailableError, errors.GenerationTimeoutError)


def may_have_been_sent(error: errors.YandexArtError, intent: Intent) -> bool:
    """Whether a start that failed so may still have made a generation: not when no attempt ever
    connected (:class:`~.errors.ServiceUnreachableError`), unless it is a re-send (its first start
    went out before a crash, and may have made one)."""
    if isinstance(error, errors.ServiceUnreachableError):
        return intent.resend
    return isinstance(error, AMBIGUOUS)


def final_status(error: errors.YandexArtError) -> str | None:
    """The store status an error settles, or None when the operation may still finish on the server."""
    if isinstance(error, errors.OperationCancelledError):
        return "cancelled"
    if isinstance(error, errors.OperationNotFoundError):
        return "expired"
    if isinstance(error, (errors.OperationFailedError, errors.ContentModerationError)):
        return "failed"
    return None


async def settle_failure(store: Store | None, error: errors.YandexArtError, intent: Intent | None = None) -> None:
    """Record a definitive failure; leave an operation pending, or a start submitting, when the
    service may still have it."""
    if store is None:
        return
    if error.operation_id:
        outcome = final_status(error)
        if outcome is not None:
            await off_thread(store.record_failed, error.operation_id, outcome, str(error))
    elif intent is not None and intent.request.api == "images":
        if not isinstance(error, errors.AnswerLostError):  # refused: a synchronous answer is never ambiguous
            await off_thread(store.settle_intent, intent.key, "failed", str(error))
    elif intent is not None and not may_have_been_sent(error, intent):
        await off_thread(store.settle_intent, intent.key, "failed", str(error))  # refused, or never sent: none made


async def cancel_and_settle(
    tasks: Sequence[asyncio.Future[Any]], store: Store | None, unsent: Iterable[str],
) -> None:
    """A batch was cancelled: cancel its tasks, wait until each has settled, and record its generations
    never sent as cancelled (nothing to collect, and nothing to start after a restart)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if store is not None:
        keys = list(unsent)

        def settle(target: Store) -> None:
            for key in keys:
                target.settle_intent(key, "cancelled", INTERRUPTED_UNSENT)

        await off_thread(settle, store)
