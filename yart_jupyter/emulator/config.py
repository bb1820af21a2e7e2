"""What the emulator accepts, how long it takes, and which faults it injects."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ..core.config import EMULATOR_FOLDER

DEFAULT_API_KEY = "emulator-key"
DEFAULT_FOLDER = EMULATOR_FOLDER

#: How a duration is written (``--duration``, ``YANDEXART_EMULATOR_DURATION``), for help and refusals.
DURATION_FORMS = "SECONDS, uniform:A:B or lognormal:MEDIAN:SIGMA[:LOW:HIGH]"


@dataclass(frozen=True)
class Duration:
    """A distribution of generation times in seconds: fixed, uniform or lognormal, clipped."""

    kind: str = "lognormal"
    a: float = 1.5
    b: float = 0.35
    low: float = 0.0
    high: float = math.inf

    @classmethod
    def parse(cls, spec: str) -> Duration:
        """``"2"``, ``"fixed:2"``, ``"uniform:1:3"`` or ``"lognormal:MEDIAN:SIGMA[:LOW:HIGH]"``."""
        parts = spec.split(":")
        try:
            if len(parts) == 1:
                return cls("fixed", float(parts[0]))
            kind, nums = parts[0], [float(p) for p in parts[1:]]
        except ValueError:
            raise ValueError(f"bad duration {spec!r}") from None
        if kind == "fixed" and len(nums) == 1:
            return cls("fixed", nums[0])
        if kind == "uniform" and len(nums) == 2:
            return cls("uniform", nums[0], nums[1])
        if kind == "lognormal" and len(nums) in (2, 4):
            return cls("lognormal", *nums)
        raise ValueError(f"bad duration {spec!r}")

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        else:
            value = self.a * math.exp(rng.gauss(0.0, self.b))
        return min(self.high, max(self.low, value))


#: Fault kinds the emulator knows; see :class:`Fault`.
FAULT_KINDS = (
    "status",        # answer with an error status (500, 502, 503, 504, 429, ...)
    "drop_before",   # close the connection before doing anything
    "drop_after",    # do the work, then close the connection without answering
    "slow",          # wait ``seconds`` before doing anything (the request is in flight, nothing made yet)
    "slow_after",    # do the work, then wait ``seconds`` before answering (made, answer not yet read)
    "malformed",     # answer 200 with a body that is not JSON
    "truncated",     # answer 200 with half of the real body
    "fail",          # the operation finishes with an error (start phase only)
)
PHASES = ("start", "poll", "token", "cancel", "images", "picture", "any")


@dataclass
class Fault:
    """One injected fault, used ``times`` times by requests of ``phase``."""

    kind: str
    phase: str = "any"
    times: int = 1
    status: int = 503
    retry_after: float | None = None
    seconds: float = 5.0
    message: str = "injected fault"
    #: The gRPC code of a failed operation ("fail"); 3 with a terms-of-use message is moderation.
    code: int = 13

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}; known: {', '.join(PHASES)}")


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told; the defaults mimic the real service, only faster."""

    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_API_KEY})
    iam_tokens: set[str] = field(default_factory=set)
    oauth_tokens: set[str] = field(default_factory=lambda: {"emulator-oauth"})
    #: Public keys (PEM) by key id, for service-account JWTs; an unknown kid is refused.
    service_account_keys: dict[str, str] = field(default_factory=dict)
    folders: set[str] = field(default_factory=lambda: {DEFAULT_FOLDER})
    duration: Duration = field(default_factory=lambda: Duration("lognormal", 1.5, 0.35, 0.3, 6.0))
    generate_per_minute: int = 500
    #: Generations per day (the service's 5,000); a 429 RESOURCE_EXHAUSTED once used up.
    generate_per_day: int | None = None
    #: The generation quota's window in seconds (60: "per minute"; shorter for quick benchmarks).
    generate_window: float = 60.0
    reads_per_second: int = 50
    send_retry_after: bool = True
    moderation_words: set[str] = field(default_factory=lambda: {"forbidden", "gore"})
    keep_seconds: float = 3 * 24 * 3600
    iam_token_ttl: float = 12 * 3600
    #: Response variants the client must accept.
    omit_done_while_pending: bool = False
    include_type: bool = True
    model_version: str | None = ""
    error_shape: str = "wrapped"  # "wrapped": {"error": {...}}; "flat": {"code", "message"}
    #: Grow JPEGs to this many bytes (0 keeps them small); realistic is 1-1.6 MB.
    payload_bytes: tuple[int, int] = (0, 0)
    #: A real photograph returned for every JPEG result instead of a drawn scene: anything whose
    #: result depends on how pictures compress (previews, notebook weight) is measured with it.
    photo: bytes | None = field(default=None, repr=False)
    #: Random faults for soak tests: the probability and the kinds to draw from.
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("status",)
    max_body_bytes: int = 64 * 1024
    random_seed: int | None = None
    #: How long one Images API request takes (the service: about 3-6 s).
    images_duration: Duration = field(default_factory=lambda: Duration("uniform", 3.0, 6.0))
    #: Models the Images API serves (short names).
    images_models: set[str] = field(default_factory=lambda: {"aliceai-image-art-3.0"})
    #: Models whose use is denied (403 Access to model … denied), as the retired yandex-art is reported.
    denied_models: set[str] = field(default_factory=set)
    #: Models whose operations never finish (yandex-art-2.0 is reported to stay ``done: false``).
    hanging_models: set[str] = field(default_factory=lambda: {"yandex-art-2.0"})
    #: Answer the Images API with a ``url`` to the picture instead of ``b64_json``, and with this
    #: ``revised_prompt`` (None: none).
    images_as_url: bool = False
    #: The Images API's error bodies: "yandex-flat" (as reported), "openai", "wrapped" or "flat".
    images_error_shape: str = "yandex-flat"
    #: Refuse moderated prompts on the asynchronous API in Russian too (as reported since 2025).
    russian_moderation: bool = False
    revised_prompt: str | None = None

    @property
    def default_api_key(self) -> str:
        return sorted(self.api_keys)[0]

    @property
    def default_folder(self) -> str:
        return sorted(self.folders)[0]
