"""One HTTP exchange with retries: backoff with jitter, ``Retry-After``, one credential refresh.

Both the API client and the token exchanges go through :func:`send`, so every request gets the
same retry rules, the same error mapping and the same refusal to leak credentials.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..core import errors
from ..core.config import check_secure
from ..core.redact import get_logger
from .answers import error_for, parse_error_body
from .limits import SlidingWindowLimiter

log = get_logger("yart_jupyter.clients.transport")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with jitter, bounded twice."""

    max_attempts: int = 6
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 20.0
    max_elapsed: float = 120.0
    max_retry_after: float = 120.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``retry`` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * self.factor ** (retry - 1))
        jittered = backoff * random.uniform(0.5, 1.0)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_retry_after))
        return jittered


@dataclass
class Response:
    """A completed HTTP exchange: status, headers and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    client_request_id: str
    #: When the attempt that got this answer was sent (monotonic): after any wait for quota or retry.
    sent: float = 0.0

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("x-server-trace-id")

    def json(self) -> Any:
        """The body as JSON (only small bodies come here: operations go through read_operation)."""
        return json.loads(self.body)


class RetryableError(Exception):
    """Raised by a response check to ask :func:`send` for another attempt."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


AuthHeader = Callable[[bool], Awaitable[str | None]]
RetryListener = Callable[[int, str, float], None]


@dataclass(frozen=True)
class Exchange:
    """One logical request: what is sent, where, and how its answer is judged."""

    method: str
    #: The full URL (for :meth:`.Connection.send`, a path on the API's host).
    url: str
    json_body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The operation the request is about: every error it raises names it.
    operation_id: str | None = None
    #: Seconds for one attempt (None: 60 s, or the connection's request timeout).
    timeout: float | None = None
    #: False for a request billed on arrival whose answer cannot be asked for again (see :func:`send`).
    replay: bool = True
    #: May raise :class:`RetryableError` for a 200 whose body is unusable (truncated or malformed).
    check: Callable[[Response], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Delivery:
    """How an exchange is delivered: credentials, retries, the quota it spends, who hears of retries."""

    #: ``auth(refresh)`` returns the Authorization header value.
    auth: AuthHeader | None = None
    #: Whether one credential refresh is tried after a 401.
    refreshable: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: SlidingWindowLimiter | None = None
    #: The caller already took the first attempt's quota slot.
    limiter_held: bool = False
    on_retry: RetryListener | None = None
    #: Awaited before a request the service refused (429, 5xx: it took nothing) goes out again, after
    #: the wait; it may raise to give the request up (a start another run made meanwhile).
    before_resend: Callable[[], Awaitable[None]] | None = None


async def send(session: aiohttp.ClientSession, exchange: Exchange, delivery: Delivery | None = None) -> Response:
    """Send one logical request, retrying transient failures; return the successful response.

    ``auth(refresh)`` returns the Authorization header value (``refresh=True`` after a 401:
    exactly one refresh is tried, when the credentials are ``refreshable``). ``check`` may raise
    :class:`RetryableError` for a 200 whose body is unusable (truncated or malformed JSON).
    Errors come back typed (see :mod:`.errors`). With a ``limiter`` every attempt waits for a
    quota slot (the first one is already taken when ``limiter_held``), and a 429 pauses everyone
    who shares it. ``replay=False`` (a request billed on arrival, whose answer cannot be asked for
    again): once the request may have reached the server, a lost answer (dropped connection,
    timeout, an unusable 200) raises :class:`~.errors.AnswerLostError` instead of sending it again;
    refusals (429, 5xx) and connections that never opened are still retried.
    """
    method, url, json_body, headers = exchange.method, exchange.url, exchange.json_body, exchange.headers
    operation_id, replay, check = exchange.operation_id, exchange.replay, exchange.check
    timeout = exchange.timeout if exchange.timeout is not None else 60.0
    delivery = delivery or Delivery()
    auth, refreshable, retry = delivery.auth, delivery.refreshable, delivery.retry
    limiter, limiter_held, on_retry = delivery.limiter, delivery.limiter_held, delivery.on_retry
    client_request_id = str(uuid.uuid4())
    started = time.monotonic()
    attempt = 0
    refreshed = False
    refresh_next = False
    reached = False  # whether any attempt got past connecting: until one does, nothing was sent
    while True:
        attempt += 1
        taken: float | None = None
        unsent = False  # this attempt's connection never opened: the service never counted it
        if limiter is not None and not (limiter_held and attempt == 1):
            queued = time.monotonic()
            taken = await limiter.acquire()
            started += time.monotonic() - queued  # waiting for quota is not part of the retry budget
        request_headers = {"x-client-request-id": client_request_id, **headers}
        if auth is not None:
            check_secure(url)
            value = await auth(refresh_next)
            refresh_next = False
            if value:
                request_headers["Authorization"] = value
        retry_after: float | None = None
        refused = False  # the service answered that it took nothing (429, 5xx)
        try:
            sent = time.monotonic()
            async with session.request(
                method, url, json=json_body, headers=request_headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as raw:
                reached = True
                body = await raw.read()
                response = Response(raw.status, raw.headers, body, client_request_id, sent)
            if response.status == 401 and auth is not None and refreshable and not refreshed:
                refreshed = True
                refresh_next = True
                log.debug("%s %s: 401, refreshing credentials once", method, url)
                continue
            if response.status in RETRY_STATUSES:
                refused = True
                error: BaseException = error_from_response(response, operation_id)
                if isinstance(error, errors.QuotaExceededError) and error.period == "day":
                    # frees tomorrow: final at once, and no pause for the folder's other starts, which
                    # get the same answer (paused, a batch's later rows waited 120 s to be refused)
                    raise error
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if response.status == 429 and limiter is not None:  # never longer than a retry would wait
                    limiter.penalize(min(retry_after, retry.max_retry_after) if retry_after is not None
                                     else retry.delay(attempt))
                reason = f"HTTP {response.status}"
            elif response.status >= 400:
                raise error_from_response(response, operation_id)
            else:
                if check is not None:
                    await check(response)
                return response
        except RetryableError as exc:
            if not replay:
                raise _lost(exc.reason, operation_id, client_request_id) from None
            error, reason = exc, exc.reason
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            connected = not isinstance(exc, aiohttp.ClientConnectorError)
            reached, unsent = reached or connected, not connected
            if not replay and connected:
                raise _lost(_describe(exc, timeout), operation_id, client_request_id) from None
            error, reason = exc, _describe(exc, timeout)
        finally:
            if limiter is not None and taken is not None:  # the server counted it on arrival: by now
                (limiter.release if unsent else limiter.settle)(taken)
        elapsed = time.monotonic() - started
        delay = retry.delay(attempt, retry_after)
        if attempt >= retry.max_attempts or elapsed + delay > retry.max_elapsed or no_such_host(error):
            raise _final_error(error, reason, attempt, operation_id, client_request_id, reached) from None
        if method == "POST" and isinstance(error, aiohttp.ClientConnectorError):
            log.warning("%s %s: %s before the request was sent; retrying", method, url, reason)
        elif method == "POST" and not isinstance(error, errors.YandexArtError):
            log.warning(
                "%s %s: %s after the request was sent; retrying with the same Idempotency-Key",
                method, url, reason,
            )
        log.debug("%s %s: %s; retry %d in %.2f s", method, url, reason, attempt, delay)
        if on_retry is not None:
            on_retry(attempt, reason, delay)
        await asyncio.sleep(delay)
        if refused and delivery.before_resend is not None:
            await delivery.before_resend()


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(response: Response, operation_id: str | None = None) -> errors.YandexArtError:
    """The typed error for an HTTP error response."""
    code, message = parse_error_body(response.body)
    return error_for(
        response.status, code, message,
        operation_id=operation_id, request_id=response.request_id,
        client_request_id=response.client_request_id,
    )


def no_such_host(error: BaseException) -> bool:
    """Whether the name server says the endpoint's host does not exist (a mistyped base URL): asking
    again changes nothing, where a failure to reach the name server might pass."""
    os_error = getattr(error, "os_error", None) if isinstance(error, aiohttp.ClientConnectorError) else None
    return isinstance(os_error, socket.gaierror) and os_error.errno == socket.EAI_NONAME


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"no response within {timeout:g} s"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server dropped the connection"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if no_such_host(exc):
            return f"no host is named {exc.host} (the name server knows none: a typo in the base URL?)"
        return f"cannot connect ({exc.os_error})"
    return f"connection error ({type(exc).__name__})"


def _lost(reason: str, operation_id: str | None, client_request_id: str) -> errors.AnswerLostError:
    return errors.AnswerLostError(
        f"The request was sent but its answer was lost ({reason}); it may have been made and billed",
        operation_id=operation_id, client_request_id=client_request_id,
    )


def _final_error(
    error: BaseException, reason: str, attempts: int, operation_id: str | None, client_request_id: str,
    reached: bool,
) -> errors.YandexArtError:
    tries = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
    if isinstance(error, errors.YandexArtError):
        error.message = f"{error.message} ({tries})"
        return error
    if not reached:  # every attempt failed to connect: the request never left this machine
        return errors.ServiceUnreachableError(
            f"The service is unreachable: {reason} {tries}",
            operation_id=operation_id, client_request_id=client_request_id,
            hint=None if operation_id is None else  # a read or a cancel: the operation itself goes on
            f"The generation may still finish on the service: collect it later with `%yandexart resume "
            f"{operation_id}` (yart resume {operation_id}); running the cell again would start another",
        )
    return errors.ServiceUnavailableError(
        f"The service is unreachable: {reason} {tries}",
        operation_id=operation_id, client_request_id=client_request_id,
    )
