"""How an item ends in the store: a failure settled or left to collect, a cancelled batch's unsent intents.

One copy of each sequence, for the engine and for batch runs alike.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ..core import errors
from ..core.request import GenerationRequest
from ..core.steps import off_thread
from ..store import Store
from .intents import Intent

#: What an interrupted batch's never-sent generation is recorded as.
INTERRUPTED_UNSENT = "interrupted before it was sent"


class Refusals:
    """What the service refused in a way that holds for every request of a kind: credentials that do
    not authenticate and the day's quota (every request), a denied model or one the Images API does
    not serve (its requests). Once one came back, a run sends no more of that kind, and those still
    waiting for a slot of the starts' quota stop waiting: each is a :class:`~.errors.NotSentError`,
    sent to nobody. So a batch of a thousand on a denied model is one refusal (or the few sent
    meanwhile), not a thousand that spend the folder's per-minute quota for everyone using it."""

    def __init__(self) -> None:
        self._seen: dict[str, errors.YandexArtError] = {}
        #: Intents (by key) whose request has not gone out: the task waiting to send it, and its request.
        self._waiting: dict[str, tuple[asyncio.Task[Any], GenerationRequest]] = {}
        self._stopped: dict[str, errors.YandexArtError] = {}

    def note(self, error: errors.YandexArtError, request: GenerationRequest) -> None:
        """A start was refused with ``error``: when it holds for its whole kind, remember it and stop
        the waits of that kind whose request has not gone out."""
        if isinstance(error, errors.CredentialsNotFoundError):  # nothing was sent: each fails alike, at once
            return
        if isinstance(error, errors.AuthenticationError) or (
                isinstance(error, errors.QuotaExceededError) and error.period == "day"):
            scope = ""
        elif isinstance(error, (errors.PermissionDeniedError, errors.ModelNotServedError)):
            scope = request.model_uri
        else:
            return
        self._seen.setdefault(scope, error)
        for key, (task, waiting) in list(self._waiting.items()):
            if scope in ("", waiting.model_uri) and key not in self._stopped:
                self._stopped[key] = error
                task.cancel()

    def check(self, request: GenerationRequest) -> None:
        """Raise :class:`~.errors.NotSentError` when the service refused this request's kind already."""
        refusal = self._seen.get("") or self._seen.get(request.model_uri)
        if refusal is not None:
            raise errors.NotSentError(refusal)

    def waiting(self, key: str, request: GenerationRequest) -> None:
        """The current task waits to send ``request`` (the intent ``key``): a refusal of its kind
        cancels it until :meth:`sending`."""
        task = asyncio.current_task()
        if task is not None:
            self._waiting[key] = (task, request)

    def sending(self, key: str, request: GenerationRequest) -> None:
        """The intent's request goes out now (a refusal noted before raises here instead)."""
        self.check(request)
        self._waiting.pop(key, None)

    def stopped(self, key: str) -> errors.NotSentError | None:
        """Whether the waiting task's cancellation was a refusal's stop (then it is undone, unless
        an interrupt cancelled it too): the error to raise instead, or None. It waits no longer."""
        self._waiting.pop(key, None)
        refusal = self._stopped.pop(key, None)
        task = asyncio.current_task()
        if refusal is None or task is None:
            return None
        if sys.version_info >= (3, 11) and task.uncancel() > 0:  # an interrupt too: that one wins
            return None
        return errors.NotSentError(refusal)


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
    elif intent is not None and intent.request.api == "images":  # a synchronous answer is never ambiguous
        lost = isinstance(error, errors.AnswerLostError)  # sent, answer lost: it stays submitting, said why
        await off_thread(store.settle_intent, intent.key, "submitting" if lost else "failed", str(error))
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
