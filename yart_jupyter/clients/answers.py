"""What the service's error answers mean: the typed error, with what to do, for a status, a code
and a message.

Both APIs answer errors in several shapes (:func:`parse_error_body` reads them all); :func:`error_for`
turns what they say into the package's one error hierarchy, naming the likely causes where the
wording is known (a retired or misspelt model, a folder that does not match, moderation).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..core import errors
from ..core.models import LIVING_MODEL, lookup, meant, short_name

#: How the service words a moderation refusal, in English and in Russian ("I can't generate this
#: image. Let's try another topic.").
_MODERATION_MARKERS = ("violate the terms of use", "violate the terms of usage", "terms of use",
                       "не могу сгенерировать", "попробуем другую тему")
_DENIED = re.compile(r"access to model (\S+) denied", re.IGNORECASE)
#: The Images API's 404 for a model it does not serve: ours ("Model art://… not found") or OpenAI's wording
_MODEL_NOT_FOUND = re.compile(r"model [`'\"]?([^\s`'\"]+)[`'\"]? (?:not found|does not exist)", re.IGNORECASE)
_FOLDER_MISMATCH = re.compile(r"folder id .* does not match", re.IGNORECASE)
_PROMPT_SIZE = re.compile(r"prompt (?:positive )?size (\d+) exceeds limit \((\d+)\)", re.IGNORECASE)


def parse_error_body(body: bytes) -> tuple[int | None, str]:
    """(gRPC code, message) from either documented error shape, or from whatever came back."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace").strip()
        return None, text[:200]
    if isinstance(data, dict):
        wrapped = data.get("error")
        inner: dict[str, Any] = wrapped if isinstance(wrapped, dict) else data
        code = inner.get("grpcCode", inner.get("code"))
        message = inner.get("message") or (wrapped if isinstance(wrapped, str) else "") or inner.get("httpStatus") or ""
        return (code if isinstance(code, int) else None), str(message)
    return None, str(data)[:200]


def is_moderation(message: str) -> bool:
    """True when a message is the content-moderation refusal."""
    lowered = message.lower()
    return any(marker in lowered for marker in _MODERATION_MARKERS)


def error_for(
    status: int | None, code: int | None, message: str, **ids: Any
) -> errors.YandexArtError:
    """Map an HTTP status and/or gRPC code to the error class users catch."""
    text = message or "no message"
    ids.setdefault("status", status)
    ids.setdefault("grpc_code", code)
    if is_moderation(text):  # on either API, as a 400 or as an operation's error
        return errors.ContentModerationError(f"Content moderation refused the prompt: {text}", **ids)
    if status == 400 or code == 3:
        size = _PROMPT_SIZE.search(text)
        if size:
            return errors.InvalidRequestError(
                f"The prompt is too long for the service: {size.group(1)} characters, at most {size.group(2)} "
                f"(the messages together) ({text})", hint="Shorten the prompt", **ids)
        if _FOLDER_MISMATCH.search(text):
            return errors.InvalidRequestError(
                f"The folder does not match the credentials: {text}",
                hint="An API key or service account works in its own folder only: set YC_FOLDER_ID "
                     "(or %config YandexArt.folder_id) to the folder the service account belongs to", **ids)
        return errors.InvalidRequestError(f"The server refused the request: {text}", **ids)
    if status == 401 or code == 16:
        return errors.AuthenticationError(
            f"Authentication failed: {text}", hint="Check that the API key or IAM token is valid and not expired",
            **ids,
        )
    if status == 403 or code == 7:
        denied = _DENIED.search(text)
        if denied:
            return errors.ModelDeniedError(f"Access to the model denied: {text}", hint=denied_hint(denied.group(1)),
                                           **ids)
        return errors.PermissionDeniedError(f"Permission denied: {text}", **ids)
    if status == 404 or code == 5:
        missing = _MODEL_NOT_FOUND.search(text)
        if missing:  # the Images API names a model it does not serve; no operation is involved
            return errors.ModelNotServedError(f"The service does not serve this model: {text}",
                                              hint=not_served_hint(missing.group(1)), **ids)
        return errors.OperationNotFoundError(f"Not found: {text}", **ids)
    if status == 429 or code == 8:
        return errors.QuotaExceededError(f"Quota exceeded: {text}", **ids)
    if code == 1:
        return errors.OperationCancelledError(f"Cancelled: {text}", **ids)
    if status == 504 or code == 4:
        return errors.ServiceUnavailableError(f"The service timed out: {text}", **ids)
    return errors.ServiceUnavailableError(
        f"The service failed (HTTP {status}): {text}" if status else f"The service failed: {text}", **ids
    )


def denied_hint(uri: str) -> str:
    """The likely causes of ``Access to model … denied``, most likely first, each with what to do."""
    causes = []
    name = _model_name(uri)
    if re.match(r"art://yandex-art", uri):
        causes.append("the model URI has no folder: art://<folder>/<model>")
    elif "/yandex-art" in uri:
        causes.append(f"the model is retired (yandex-art is reported denied since September 2026): switch with "
                      f'%config YandexArt.model_uri = "{LIVING_MODEL}"')
    elif name and lookup(name) is None:  # a misspelt name is denied like a model without the role
        causes.append(_not_known(name))
    causes.append("the account lacks the role ai.imageGeneration.user in the folder")
    causes.append("an API key lacks the scope yc.ai.imageGeneration.execute")
    causes.append("the cloud has no active billing account")
    return "Likely causes, in order: " + "; ".join(f"({n}) {c}" for n, c in enumerate(causes, 1))


def not_served_hint(uri: str) -> str:
    """What to do when the service says it does not serve a model (the Images API's 404)."""
    name = _model_name(uri)
    spec = lookup(name) if name else None
    if name and spec is None:
        return _not_known(name)
    if spec is not None and spec.api == "operations":
        return (f"{spec.name} is served by the asynchronous API, not the Images API: name it without images: "
                "(%yandexart models lists the API of each)")
    return "The service may not serve it to this folder yet: check the folder (YC_FOLDER_ID) and the model's name"


def _not_known(name: str) -> str:
    """The likely cause when the catalogue does not know a model's name: a misspelling."""
    near = meant(name)
    if near:
        return f"{name} is not a model this version knows: did you mean {near}?"
    return (f"{name} is not a model this version knows (misspelt?): %yandexart models (yart models) "
            f"lists the ones it knows, {LIVING_MODEL} is the one serving")


def _model_name(uri: str) -> str:
    """The model's name in a URI the service quoted, or a bare name as it is ("" for a URI without a folder)."""
    name = short_name(uri)
    return "" if name.startswith("art://") else name
