"""One hierarchy of typed errors, each a single readable line.

Every error carries what support asks for when it is known: the operation id, the server's
``x-request-id`` and our ``x-client-request-id``. In a notebook, ``_render_traceback_`` makes
IPython print that one line instead of a traceback wall.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from .redact import redact

#: How to try the product with no account, for every face (the environment variable reaches them all).
TRY_WITHOUT_ACCOUNT = "YANDEXART_BASE_URL=emulator uses the embedded emulator (base_url='emulator' in code)"


class YandexArtError(Exception):
    """Base of every error raised by yart_jupyter."""

    #: A short hint on what to do, appended to the message when set.
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        operation_id: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        status: int | None = None,
        grpc_code: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = " ".join(str(message).split())
        self.operation_id = operation_id
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.status = status
        self.grpc_code = grpc_code
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.said([self.operation_id] if self.operation_id else [])

    def said(self, operation_ids: Sequence[str], *, generic: bool = False) -> str:
        """The one line, naming ``operation_ids`` (its own, or those of every generation the same
        refusal stopped) and its request id; ``generic``: its own operation id, where its message or
        hint names it, reads ``ID`` (the line stands for several failures alike)."""
        message, hint = (self.message, self.hint) if not generic else (_generic(self.message, self),
                                                                       _generic(self.hint, self))
        parts = [message.rstrip(".") + "."]
        if hint:
            parts.append(hint.rstrip(".") + ".")
        ids = []
        if operation_ids:
            ids.append(f"operation{'s' if len(operation_ids) > 1 else ''} {', '.join(operation_ids)}")
        if self.request_id:
            ids.append(f"request id {self.request_id}")
        if ids:
            parts.append(f"[{'; '.join(ids) if len(operation_ids) > 1 else ', '.join(ids)}]")
        return redact(" ".join(parts))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def _render_traceback_(self) -> list[str]:
        """IPython hook: show the one-line message instead of a traceback."""
        return [f"{type(self).__name__}: {self}"]


class InvalidRequestError(YandexArtError, ValueError):
    """The request was refused as invalid (by our validation or by the server: HTTP 400)."""


class RequestValidationError(InvalidRequestError):
    """A request field is out of range; raised before anything is sent."""

    def __init__(self, field: str, value: Any, limit: str, *, missing: bool = False) -> None:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        # A field never given reads "no folder_id: ..." (not "folder_id None is invalid").
        super().__init__(f"no {field}: {limit}" if missing else f"{field} {shown} is invalid: {limit}")
        self.field = field
        self.value = value
        self.limit = limit


class ContentModerationError(InvalidRequestError):
    """The prompt was rejected by content moderation (terms of use)."""

    hint = "Rephrase the prompt; this is a content-policy refusal, not a bug"


class ModelNotServedError(InvalidRequestError):
    """The Images API does not serve the model asked for (its 404 naming the model): a misspelt or
    unlisted name, or a model of the asynchronous API; no request for it will be served."""


class AuthenticationError(YandexArtError):
    """Credentials are missing, wrong or expired (HTTP 401)."""


class CredentialsNotFoundError(AuthenticationError):
    """No credentials could be found in any of the places we look."""


class PermissionDeniedError(YandexArtError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""

    hint = (
        "Likely causes: the folder id is missing from the model URI (art://<folder>/yandex-art/latest), "
        "the account lacks the role ai.imageGeneration.user in that folder, "
        "or the cloud has no active billing account"
    )


class ModelDeniedError(PermissionDeniedError):
    """``Access to model … denied``: a retired model, a missing role or an API key's scope; never retried."""


class QuotaExceededError(YandexArtError):
    """The folder's quota is used up (HTTP 429 RESOURCE_EXHAUSTED) and retries did not help.

    ``period`` is the quota the service named: ``"minute"`` (``ai.imageGenerationRequestsPerMinute.rate
    exceeded``: anyone sharing the folder may have spent it, and it frees within a minute), ``"second"``,
    ``"day"``, or None when the answer did not say. Only ``"day"`` means the day's quota is gone.
    """

    hint = "Wait and re-run, or ask for a larger quota in the Yandex Cloud console"

    @property
    def period(self) -> Literal["second", "minute", "day"] | None:
        return quota_period(self.message)


_PERIODS: tuple[tuple[Literal["second", "minute", "day"], re.Pattern[str]], ...] = (
    ("day", re.compile(r"per ?day|a day\b|daily|86[ ,]?400", re.I)),
    ("minute", re.compile(r"per ?minute|a minute\b|per 60 ?s\b", re.I)),
    ("second", re.compile(r"per ?second|a second\b|per 1 ?s\b", re.I)),
)


def quota_period(text: str) -> Literal["second", "minute", "day"] | None:
    """Which quota a 429's text names (``...RequestsPerMinute.rate exceeded`` is per minute)."""
    for period, pattern in _PERIODS:
        if pattern.search(text):
            return period
    return None


class OperationFailedError(YandexArtError):
    """The server accepted the generation but the operation finished with an error."""


class OperationNotFoundError(YandexArtError, LookupError):
    """The operation id is unknown or expired (results are kept for three days)."""

    hint = "Results are kept for three days; check the id or generate again"


class GenerationTimeoutError(YandexArtError, TimeoutError):
    """Waiting exceeded its time limit; the operation may still finish on the server."""


def collect_later(operation_id: str) -> str:
    """The hint of a wait given up while its operation may still finish: how to collect it."""
    return f"Collect it later with `%yandexart resume {operation_id}` or yart_jupyter.resume('{operation_id}')"


class ServiceUnavailableError(YandexArtError):
    """The service kept failing (5xx, dropped connections, timeouts) after every retry."""


class ServiceUnreachableError(ServiceUnavailableError):
    """No attempt reached the service (connection refused, a name that does not resolve): the
    request was never sent. For a start, nothing was made or billed, and it is settled as failed;
    for a read of an operation, the operation itself goes on (the hint says how to collect it)."""

    hint = "Nothing was sent; check the network or the base URL, then run it again"


class AnswerLostError(ServiceUnavailableError):
    """A synchronous request (the Images API) reached the server but its answer was lost: the
    picture may have been made and billed, and the service keeps nothing to collect."""

    hint = ("It is not sent again on its own (that may bill twice): `%yandexart resume --all --resend-lost` "
            "(yart resume --all --resend-lost) sends it anew when you decide to")


class OperationCancelledError(YandexArtError):
    """The operation was cancelled before it produced an image."""


class NotSentError(YandexArtError):
    """A generation of a run not sent, because the service refused another of the same kind in a way
    that holds for all of them (credentials, a denied model, the day's quota): nothing was sent or
    billed for it, and a run once that is solved makes it."""

    hint = "Nothing was sent or billed; run again once that is solved"

    def __init__(self, refusal: YandexArtError) -> None:
        self.refusal = refusal
        reason = refusal.message.split(": ")[0].split(". ")[0]
        super().__init__(f"not sent: the service refuses every request of its kind ({reason[:80]})")


class StorageError(YandexArtError, OSError):
    """A result could not be written to disk (the image itself is still shown and kept)."""


class ConfigurationError(YandexArtError, ValueError):
    """A setting is unusable (a base URL that is not http(s), secrets over plain http, ...)."""


class MagicUsageError(YandexArtError):
    """Options or a subcommand of ``%yandexart`` that it does not understand."""

    hint = "See %yandexart help"


class GenerationInterrupted(YandexArtError):
    """The magic's one-line account of an interrupt: which operations still run on the server.

    Only the notebook face raises it; the Python API lets :class:`asyncio.CancelledError` through.
    """


def failure_lines(failures: Sequence[BaseException], *, named: bool = False, counted: bool = True) -> list[str]:
    """One line per distinct failure, in the order they came: the same refusal of several generations
    (a denied model, a missing role, the day's quota) is said once, with how many it stopped (unless
    not ``counted``), every operation id (one may still run) and the first request id; those not
    sent because of a refusal come after it. ``named``: each line begins with the error's type."""
    return [_group_line(same, named=named, counted=counted) for same in _groups(failures)]


def _groups(failures: Sequence[BaseException]) -> list[list[BaseException]]:
    """The failures grouped by type and message (a request id apart), the refusals before their
    echoes (:class:`NotSentError`)."""
    groups: dict[tuple[type, str], list[BaseException]] = {}
    for failure in failures:
        text = _generic(f"{failure.message}\0{failure.hint}", failure) if isinstance(failure, YandexArtError) \
            else str(failure)
        groups.setdefault((type(failure), text), []).append(failure)
    return sorted(groups.values(), key=lambda same: isinstance(same[0], NotSentError))


def _generic(text: str, failure: YandexArtError) -> str:
    """A failure's text with its own operation id as ``ID`` (a timeout's "resume ID" hint): the same
    failure of several generations reads alike, and their ids are listed once after it."""
    return text.replace(failure.operation_id, "ID") if failure.operation_id else text


def _group_line(same: Sequence[BaseException], *, named: bool = False, counted: bool = True) -> str:
    """One group's line: the first failure's, with every operation id of the group."""
    first = same[0]
    if isinstance(first, YandexArtError):
        ids = [f.operation_id for f in same if isinstance(f, YandexArtError) and f.operation_id]
        line = first.said(ids, generic=len(ids) > 1)
    else:
        line = str(first)
    count = f"{len(same)} generations: " if counted and len(same) > 1 else ""
    return f"{count}{type(first).__name__}: {line}" if named else f"{count}{line}"


class BatchError(YandexArtError):
    """Some generations of a batch failed; ``failures`` holds every error, ``images`` what succeeded."""

    def __init__(
        self, failures: Sequence[YandexArtError], images: Sequence[Any] = (), total: int | None = None
    ) -> None:
        self.failures = list(failures)
        self.images = list(images)
        self.total = total if total is not None else len(self.failures) + len(self.images)
        groups = _groups(self.failures)
        said = f"{len(self.failures)} of {self.total} generations failed"
        if len(groups) == 1:  # one refusal stopped them all: said once, without "N generations"
            said += f": {_group_line(groups[0], counted=False)}"
        elif groups:  # the first refusal; the rest: _render_traceback_, .failures
            said += f"; {_group_line(groups[0])}"
        first = groups[0][0] if groups else None
        super().__init__(said, operation_id=getattr(first, "operation_id", None),
                         request_id=getattr(first, "request_id", None))
        self._said = redact(said)
        self._rest = [_group_line(same, named=True) for same in groups[1:]]

    def __str__(self) -> str:
        return self._said

    def _render_traceback_(self) -> list[str]:
        lines = [f"{type(self).__name__}: {self}"]
        lines.extend(f"  ✖ {line}" for line in self._rest[:9])
        if len(self._rest) > 9:
            lines.append(f"  ... and {len(self._rest) - 9} more (see .failures)")
        return lines
