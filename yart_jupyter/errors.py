"""The package's errors, public as ``yart_jupyter.errors``: one typed hierarchy, each a one-line message.

Defined in :mod:`yart_jupyter.core.errors`; this module is their public address.
"""

from .core.errors import (
    AnswerLostError,
    AuthenticationError,
    BatchError,
    ConfigurationError,
    ContentModerationError,
    CredentialsNotFoundError,
    GenerationInterrupted,
    GenerationTimeoutError,
    InvalidRequestError,
    MagicUsageError,
    ModelDeniedError,
    NotSentError,
    OperationCancelledError,
    OperationFailedError,
    OperationNotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RequestValidationError,
    ServiceUnavailableError,
    ServiceUnreachableError,
    StorageError,
    YandexArtError,
)

__all__ = [
    "AnswerLostError",
    "AuthenticationError",
    "BatchError",
    "ConfigurationError",
    "ContentModerationError",
    "CredentialsNotFoundError",
    "GenerationInterrupted",
    "GenerationTimeoutError",
    "InvalidRequestError",
    "MagicUsageError",
    "ModelDeniedError",
    "NotSentError",
    "OperationCancelledError",
    "OperationFailedError",
    "OperationNotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RequestValidationError",
    "ServiceUnavailableError",
    "ServiceUnreachableError",
    "StorageError",
    "YandexArtError",
]
