"""Every setting in one table: its type, default, environment variable and help.

:class:`Settings` is an immutable snapshot of all of them. The one precedence, highest first:
arguments of a call, then ``%config YandexArt.*`` / ``ipython_config.py`` (see :mod:`.settings`),
then environment variables, then the defaults here. Credentials are not settings: they come
from the environment or files only (see :mod:`.credentials`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, RequestValidationError
from .models import Model, ModelSpec, resolve
from .redact import register_secret
from .request import AspectRatio, AspectRatioLike, GenerationRequest, PromptLike, build_request, validate_mime

DEFAULT_BASE_URL = "https://llm.api.cloud.yandex.net"
DEFAULT_IAM_URL = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
EMULATOR = "emulator"
GENERATE_PATH = "/foundationModels/v1/imageGenerationAsync"
#: The synchronous OpenAI-compatible Images API (Alice AI ART) and its host.
IMAGES_PATH = "/v1/images/generations"
DEFAULT_IMAGES_URL = "https://ai.api.cloud.yandex.net"
#: What the ``inline`` setting may be: how a cell output embeds its pictures.
INLINE_MODES = ("preview", "full", "none")
#: The folder the embedded emulator answers for when none is configured.
EMULATOR_FOLDER = "emulator-folder"
#: How every face names the setting that shows a seedless request's stored samples again.
REUSE_SETTING = "the reuse_samples setting (%config YandexArt.reuse_samples = True, or YANDEXART_REUSE_SAMPLES=1)"


def _setting(default: Any, env: str, help: str, *, shown: bool = True) -> Any:
    return field(default=default, metadata={"env": env, "help": help}, repr=shown)


@dataclass(frozen=True)
class Settings:
    """Where to talk to, what to ask for by default, how long to wait, where to keep results."""

    base_url: str = _setting(DEFAULT_BASE_URL, "YANDEXART_BASE_URL",
                             "API base URL, or 'emulator' for the embedded emulator.")
    images_url: str | None = _setting(None, "YANDEXART_IMAGES_URL",
                                      "Images API base URL (unset: https://ai.api.cloud.yandex.net with the default "
                                      "base_url, else base_url, which then serves both APIs' paths).")
    iam_url: str = _setting(DEFAULT_IAM_URL, "YANDEXART_IAM_URL", "Where IAM tokens are obtained.")
    folder_id: str | None = _setting(None, "YC_FOLDER_ID", "Yandex Cloud folder id (fills the model URI).")
    model_uri: str | None = _setting(None, "YANDEXART_MODEL_URI",
                                     "Model: a catalogue name (aliceai-image-art-3.0) or a URI; images:NAME for a "
                                     "model the Images API serves (default yandex-art/latest).")
    default_aspect: str = _setting("1:1", "YANDEXART_ASPECT", "Aspect ratio when a request gives none.")
    mime_type: str = _setting("image/jpeg", "YANDEXART_MIME_TYPE", "image/jpeg or image/png.")
    max_images: int = _setting(16, "YANDEXART_MAX_IMAGES",
                               "Most images one cell or form click may start (guards the quota).")
    request_timeout: float = _setting(60.0, "YANDEXART_REQUEST_TIMEOUT", "Seconds for one HTTP request.")
    wait_timeout: float = _setting(3600.0, "YANDEXART_WAIT_TIMEOUT",
                                   "Seconds to wait for a generation before giving up.")
    data_logging: bool | None = _setting(None, "YANDEXART_DATA_LOGGING",
                                         "Send x-data-logging-enabled true/false (unset: do not send).")
    generations_per_minute: int = _setting(500, "YANDEXART_GENERATIONS_PER_MINUTE",
                                           "The folder's generation quota per minute.")
    generations_per_day: int = _setting(5000, "YANDEXART_GENERATIONS_PER_DAY",
                                        "The folder's generation quota per day (what a plan's cost is told against).")
    reads_per_second: int = _setting(50, "YANDEXART_READS_PER_SECOND",
                                     "The folder's operation-read quota per second.")
    data_dir: str | None = _setting(None, "YANDEXART_HOME",
                                    "Folder of the local store (unset: the user's data folder).")
    store: str | None = _setting(None, "YANDEXART_STORE",
                                 "Where generations are kept: unset (the local store in data_dir) or a "
                                 "postgresql://user@host/db URL (a team's store, shared by every kernel using it).",
                                 shown=False)
    reuse_samples: bool = _setting(False, "YANDEXART_REUSE_SAMPLES",
                                   "On a model without seeds (Alice AI ART), answer a request from the samples the "
                                   "store has of it, as an explicit seed is: a notebook run again costs nothing "
                                   "(--no-cache makes new ones). Off: every run is a new, billed sample.")
    inline: str = _setting("preview", "YANDEXART_INLINE",
                           "What cell outputs embed: 'preview' (a small JPEG at the shown size; the full "
                           "picture stays in the store), 'full' (the service's bytes) or 'none'.")

    @classmethod
    def resolve(
        cls,
        configured: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Defaults, then ``env``, then ``configured``, then ``overrides``; None means "not given"."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(spec.metadata["env"])
            if raw:
                values[spec.name] = _parse(spec, raw, spec.metadata["env"])
        for layer in (configured or {}, overrides or {}):
            for name, value in layer.items():
                if value is not None and value != "":
                    values[name] = value
        return cls(**values).validated()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then the non-None ``overrides`` (no ``%config`` layer)."""
        return cls.resolve(None, env, overrides)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (None values are ignored), validated."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given).validated() if given else self

    def validated(self) -> Settings:
        """Check every value; the error names the setting and says what would be valid."""
        if self.base_url != EMULATOR:
            check_url(self.base_url, "base URL")
        check_url(self.iam_url, "IAM token URL")
        if self.images_url is not None:
            check_url(self.images_url, "Images API URL")
        for name in ("max_images", "generations_per_minute", "generations_per_day", "reads_per_second"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be a whole number of at least 1, not {getattr(self, name)!r}")
        for name in ("request_timeout", "wait_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, not {getattr(self, name)!r}")
        if self.store is not None:
            check_store(self.store)
        if self.inline not in INLINE_MODES:
            raise ConfigurationError(f"inline must be one of {', '.join(map(repr, INLINE_MODES))}, not {self.inline!r}")
        try:
            AspectRatio.parse(self.default_aspect)
            validate_mime(self.mime_type)
            if self.model_uri:
                resolve(self.model_uri, self.folder or "folder")
        except RequestValidationError as exc:
            raise ConfigurationError(f"default {exc}") from None
        return self

    def request(
        self,
        prompt: PromptLike,
        *,
        seed: int | str | None = None,
        aspect: AspectRatioLike | None = None,
        mime_type: str | None = None,
        model_uri: str | None = None,
    ) -> GenerationRequest:
        """Validate a request with these defaults filling what the caller left out (nothing is sent)."""
        return build_request(
            prompt, seed=seed, aspect=aspect or self.default_aspect, mime_type=mime_type or self.mime_type,
            model_uri=model_uri or self.model_uri, folder_id=self.folder,
        )

    def model(self, name: str | None = None) -> Model:
        """The model ``name`` (default: the ``model_uri`` setting) resolved against the catalogue."""
        return resolve(name or self.model_uri, self.folder)

    def model_spec(self, name: str | None = None) -> ModelSpec:
        """What the model ``name`` (default: the configured one) can do; no folder needed (a face asks
        before the folder is set, to say what the model supports)."""
        try:
            return resolve(name or self.model_uri, self.folder or "folder").spec
        except RequestValidationError:
            return resolve(None, "folder").spec

    @property
    def images_base(self) -> str:
        """Where the Images API is asked: ``images_url``, the real host, or the configured base URL."""
        if self.images_url:
            return self.images_url.rstrip("/")
        return DEFAULT_IMAGES_URL if self.base_url.rstrip("/") == DEFAULT_BASE_URL else self.base_url.rstrip("/")

    @property
    def folder(self) -> str | None:
        """The folder requests are made for (the emulator has one of its own)."""
        if self.folder_id is None and self.base_url == EMULATOR:
            return EMULATOR_FOLDER
        return self.folder_id

    @property
    def home(self) -> Path:
        """The local store's folder: ``data_dir``, else the platform's user data folder."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return user_data_dir()

    @property
    def store_location(self) -> str:
        """The store to use: the ``store`` URL (a team's), else the local store's folder."""
        return self.store or str(self.home)

    def connection_key(self) -> tuple[Any, ...]:
        """The settings a client's connection depends on (two faces with equal keys share one)."""
        return tuple(getattr(self, name) for name in CONNECTION_FIELDS)


#: The settings the HTTP client reads; the rest shape requests, waits or storage.
CONNECTION_FIELDS = ("base_url", "images_url", "iam_url", "folder_id", "request_timeout", "wait_timeout",
                     "data_logging", "generations_per_minute", "reads_per_second", "store")

SETTINGS = tuple(fields(Settings))

#: Environment variables read outside the settings table: credentials (clients/credentials.py),
#: who generates (core/identity.py) and the embedded emulator's (emulator/__init__.py).
OTHER_VARIABLES = ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_SERVICE_ACCOUNT_KEY_FILE", "YC_METADATA_ADDR",
                   "YANDEXART_USER", "YANDEXART_EMULATOR_DURATION", "YANDEXART_EMULATOR_IMAGES_DURATION",
                   "YANDEXART_EMULATOR_DENY", "YANDEXART_EMULATOR_PHOTO")
#: Variables of the yc CLI and Terraform's provider that look like ours and are not (not typos).
_THEIRS = ("YC_TOKEN", "YC_CLOUD_ID", "YC_ZONE", "YC_ENDPOINT", "YC_STORAGE_ACCESS_KEY", "YC_STORAGE_SECRET_KEY")


def variables() -> tuple[str, ...]:
    """Every environment variable the package reads."""
    return tuple(spec.metadata["env"] for spec in SETTINGS) + OTHER_VARIABLES


def unread_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """Variables set that look like ours and are read by nothing, one line each, with the one most
    likely meant: every ``YANDEXART_*``, and a ``YC_*`` close to one we read (``YC_FOLDERID``). A
    typo there is otherwise silently ignored (``YANDEXART_DEFAULT_ASPECT``: the setting
    ``default_aspect`` is read from ``YANDEXART_ASPECT``)."""
    from .typos import closest

    env = os.environ if env is None else env
    known = variables()
    by_setting = {spec.name.upper(): spec.metadata["env"] for spec in SETTINGS}  # FOLDER_ID: YC_FOLDER_ID
    lines = []
    for name in sorted(env):
        prefix, _, rest = name.partition("_")
        if name in known or name in _THEIRS or prefix not in ("YANDEXART", "YC"):
            continue
        # what follows the prefix of a variable we read (this prefix's first), or a setting's own name
        meant_by = {k.partition("_")[2]: k for k in sorted(known, key=lambda k: k.startswith(prefix + "_"))}
        meant_by |= by_setting
        near = closest(rest, meant_by)
        # or a name cut short: MIME for MIME_TYPE, TIMEOUT for REQUEST_ or WAIT_TIMEOUT
        meant = [meant_by[near]] if near else sorted({v for k, v in meant_by.items()
                                                     if k.startswith(f"{rest}_") or k.endswith(f"_{rest}")})
        if prefix == "YANDEXART" or meant:
            hint = (f"did you mean {' or '.join(meant)}?" if 0 < len(meant) <= 3
                    else "the settings and their variables: %config YandexArt")
            lines.append(f"{name} is set but read by nothing ({hint})")
    return lines


def _parse(spec: dataclasses.Field[Any], raw: str, variable: str) -> Any:
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
    text = raw.strip()
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise ConfigurationError(f"{variable}={raw!r} is not a number") from None
    if kind.startswith("bool"):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{variable}={raw!r} is not true or false")
    return text


def user_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's data folder for yart_jupyter (XDG on Linux)."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "yart_jupyter"


def check_store(location: str) -> str:
    """A store setting is a ``postgresql://`` URL (a team's store); its password is masked from now on.
    The local store's folder is ``data_dir``."""
    parts = urlsplit(location)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            "store must be a postgresql://user@host/database URL (a team's store); the local store's folder is "
            "set with data_dir (YANDEXART_HOME)")
    register_secret(parts.password)
    return location


def check_url(url: str, what: str) -> str:
    """Refuse anything but an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"The {what} {url!r} is not an http(s) URL")
    return url.rstrip("/")


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure(url: str) -> None:
    """Credentials go over https, or over plain http only to this machine."""
    if urlsplit(url).scheme != "https" and not is_loopback(url):
        raise ConfigurationError(
            f"Refusing to send credentials over plain http to {urlsplit(url).hostname}; use https"
        )
