"""The synchronous Images API's answer, parsed tolerantly (``b64_json`` or ``url``, ``revised_prompt``).

``POST /v1/images/generations`` answers ``{"created": ..., "data": [{"b64_json": "..."}]}`` in a few
seconds; there is no operation, so a picture is named by an id made from its intent's key.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp

from ..core import errors
from ..core.config import IMAGES_PATH, Settings
from ..core.redact import get_logger
from ..core.request import GenerationRequest
from ..core.steps import steps_on_loop
from ..media.image import GeneratedImage
from ..media.pixels import sniff_mime
from .connection import Connection
from .durations import ANSWERS
from .operation import DECODE_SLICE, MalformedOperation, _decode_steps
from .transport import Delivery, Exchange, Response, RetryableError
from .waiting import (
    Progress,
    ProgressCallback,
    StartedCallback,
    SubmittingCallback,
    notify_started,
    notify_submitting,
    start_progress,
)

#: The least time one Images API request is given: a generation takes seconds, and an answer cut
#: off by a short timeout is a picture billed and lost.
IMAGES_MIN_TIMEOUT = 60.0
#: How a picture of the Images API is named (it has no operation id).
IMAGES_ID_PREFIX = "img-"
log = get_logger("yart_jupyter.clients.images_api")
_B64_KEY = re.compile(rb'"b64_json"\s*:\s*"')


@dataclass(frozen=True)
class ImagesAnswer:
    """One answer of the Images API: the picture's bytes or a link to them, and a rewritten prompt."""

    image: bytes | None
    url: str | None = None
    revised_prompt: str | None = None


def images_id(key: str) -> str:
    """The id a picture of the Images API is kept under: ``img-`` and 16 hex digits of its intent's key."""
    return IMAGES_ID_PREFIX + key.replace("-", "")[:16]


def intent_prefix(picture_id: str) -> str:
    """The start of the idempotency key a picture id of :func:`images_id` was made from."""
    digits = picture_id[len(IMAGES_ID_PREFIX):]
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}"


def is_images_id(reference: str) -> bool:
    """True for an id made by :func:`images_id` (never an operation id: those have no dash)."""
    return reference.startswith(IMAGES_ID_PREFIX)


async def read_images_answer(body: bytes) -> ImagesAnswer:
    """Parse an answer, decoding a big picture in slices that let the event loop run between them."""
    image: bytes | None = None
    match = _B64_KEY.search(body) if len(body) > DECODE_SLICE else None
    end = body.find(b'"', match.end()) if match else -1
    if match and end > 0:
        try:
            image = await steps_on_loop(_decode_steps(body[match.end():end]))
        except MalformedOperation as exc:
            raise MalformedOperation(str(exc).replace("operation", "answer")) from None
        body = body[:match.start()] + b'"b64_json":null' + body[end + 1:]
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedOperation(f"the Images API answer is not JSON ({exc})") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise MalformedOperation("the Images API answer has no picture (no data[0])")
    item = items[0]
    if image is None and isinstance(item.get("b64_json"), str):
        import base64
        import binascii

        try:
            image = base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError):
            raise MalformedOperation("the picture is not valid base64") from None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    if image is None and url is None:
        raise MalformedOperation("the Images API answer has neither b64_json nor url")
    revised = item.get("revised_prompt")
    return ImagesAnswer(image, url, revised if isinstance(revised, str) and revised else None)


class ImagesApi:
    """Generations as one synchronous request each: the picture is in the answer."""

    def __init__(self, connection: Connection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings

    async def generate(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        on_started: StartedCallback | None = None,
        idempotency_key: str | None = None,
        on_submitting: SubmittingCallback | None = None,
    ) -> GeneratedImage:
        """One synchronous request to the Images API: the picture comes back in its answer.

        It is billed on arrival and the service keeps nothing to collect, so a request whose answer
        was lost is never sent again here (:class:`~.errors.AnswerLostError`); refusals (429, 5xx)
        are retried. The picture is named by an id made from ``idempotency_key`` (there is no
        operation), and ``on_started`` runs with it once the answer is in, before it is returned.
        """
        key = idempotency_key or str(uuid.uuid4())
        picture_id = images_id(key)
        submitted = datetime.now(timezone.utc)
        clock, retried = start_progress(on_progress)

        answers: list[ImagesAnswer] = []

        async def check(response: Response) -> None:
            try:
                answers.append(await read_images_answer(response.body))
            except MalformedOperation as exc:
                raise RetryableError(str(exc)) from None

        limiter = self.connection.limiters().starts
        taken = await limiter.acquire()
        await notify_submitting(on_submitting, limiter, taken)
        reached = True
        sent = time.monotonic()  # when the last attempt went out: an answer's time counts from it

        def retrying(attempt: int, reason: str, delay: float) -> None:
            nonlocal sent
            sent = time.monotonic() + delay
            retried(attempt, reason, delay)

        try:
            await self.connection.send(
                Exchange("POST", IMAGES_PATH, json_body=request.to_json(), headers={"Idempotency-Key": key},
                         check=check, replay=False, timeout=max(self.settings.request_timeout, IMAGES_MIN_TIMEOUT)),
                Delivery(limiter=limiter, limiter_held=True, on_retry=retrying), api="images",
            )
        except errors.AnswerLostError as exc:
            exc.message += f" [intent {key}]"
            raise
        except errors.ServiceUnreachableError:
            reached = False  # no attempt reached the service: it counted none of them
            raise
        finally:
            (limiter.settle if reached else limiter.release)(taken)
        answer = answers[0]
        data = answer.image if answer.image is not None else await self.download(answer.url or "", key)
        waited = time.monotonic() - sent
        ANSWERS.observe(waited, str(request.aspect), request.model_uri)
        await notify_started(on_started, picture_id, request)
        image = GeneratedImage(
            image_bytes=data, mime_type=sniff_mime(data), seed=None, aspect=request.aspect,
            messages=request.messages, operation_id=picture_id, model_version=None, model_uri=request.model_uri,
            submitted_at=submitted, done_at=datetime.now(timezone.utc), revised_prompt=answer.revised_prompt,
        )
        if on_progress is not None:
            on_progress(Progress("done", picture_id, time.monotonic() - clock, observed=(waited, waited)))
        log.debug("Images API answered %s", picture_id)
        return image

    async def download(self, url: str, key: str) -> bytes:
        """A picture the Images API answered with a link: fetched without credentials (they are for the API)."""
        session = self.connection.require_session()
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout)) as got:
                got.raise_for_status()
                return await got.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise errors.AnswerLostError(
                f"The picture was made but its link could not be read ({type(exc).__name__}) [intent {key}]") from None
