"""What a face is set up to use — endpoint, folder, credentials, model, store — found without sending
anything to the service: ``%yandexart status``, ``yart status`` and the form's first line.

A newcomer checks this before the first (billed) picture: that the folder is the one meant, that
credentials were found (and which, redacted), and whether the model in use is one the service serves.
"""

from __future__ import annotations

import asyncio
import platform
from dataclasses import dataclass, field

from .._version import __version__
from ..clients.shared import shared_client
from ..core import errors
from ..core.config import Settings, check_secure, is_loopback, unread_variables
from ..core.models import API_NAMES, LIVING_MODEL, ModelSpec, meant
from ..store import get_store
from ..store.backend import is_team_location, redacted_url


@dataclass
class SetupReport:
    """One face's setup, each part as a person reads it; ``problems`` say what stops a generation."""

    endpoint: str
    folder: str | None
    credentials: str | None
    model: ModelSpec
    store: str
    records: int
    unfinished: int
    #: Why the endpoint or the credentials could not be resolved (one line), if they could not.
    connection_problem: str | None = None
    #: Why no request would be sent to the endpoint (credentials over plain http), if none would.
    endpoint_problem: str | None = None
    #: Why the model cannot be named without a folder (one line), if it cannot.
    folder_problem: str | None = None
    #: Why the store cannot be read (a team's database out of reach), if it cannot.
    store_problem: str | None = None
    #: Environment variables set that look like ours and are read by nothing (a typo is ignored).
    unread: list[str] = field(default_factory=list)
    #: Whether a seedless request is answered from the store's samples (the reuse_samples setting).
    reuse_samples: bool = False

    @property
    def problems(self) -> list[str]:
        """What stops a generation, one line each."""
        return [p for p in (self.endpoint_problem, self.connection_problem, self.folder_problem, self.store_problem)
                if p]

    @property
    def ready(self) -> bool:
        """Whether a generation could be sent as things are (the service may still refuse it)."""
        return not self.problems

    def model_note(self) -> str | None:
        """Why the model in use may not make pictures on the service (retired, denied, unknown), and the
        way out; None on a loopback endpoint (the emulator serves every model it is not told to deny)."""
        near = None if self.model.known else meant(self.model.name)
        if near:  # a misspelt name is sent as given (new models appear) and refused: said first, anywhere
            return (f"{self.model.name} is not a model this version knows: did you mean {near}? (a name it does "
                    "not know is sent as given, in case it is a new model)")
        if self.model.status.startswith("serving") or is_loopback(self.endpoint):
            return None
        return (f"{self.model.name} is {self.model.status.split(';')[0]}: {LIVING_MODEL} is the one serving "
                "(model_uri setting: %config YandexArt.model_uri, YANDEXART_MODEL_URI, or --model)")

    def notes(self) -> list[str]:
        """What does not stop a generation but may surprise: the model's note, mistyped variables."""
        note = self.model_note()
        return ([note] if note else []) + self.unread

    def rows(self) -> list[tuple[str, str]]:
        """(part, value) lines: what ``status`` shows."""
        spec = self.model
        rows = [("endpoint", self.endpoint),
                ("folder", self.folder or "not set (YC_FOLDER_ID)"),
                ("credentials", self.credentials or "none found"),
                ("model", f"{spec.name} · {API_NAMES[spec.api]} · " + (
                    "seeds" if spec.seeds else "no seed: a run again shows the store's samples (reuse_samples)"
                    if self.reuse_samples else "no seed: every run a new, billed sample (unless reuse_samples)")),
                ("store", f"{self.store} · cannot be read" if self.store_problem else
                          f"{self.store} · {self.records:,} generation{'s' if self.records != 1 else ''}"
                          + (f", {self.unfinished:,} unfinished (resume --all)" if self.unfinished else ""))]
        rows += [("note", note) for note in self.notes()]
        rows += [("problem", problem) for problem in self.problems]
        rows.append(("version", f"yart_jupyter {__version__} · Python {platform.python_version()}"))  # for support
        return rows

    def verdict(self) -> str:
        """One line under the rows: ready, or how many problems stand in the way."""
        if self.ready:
            return "Ready: nothing stands in the way (the service may still refuse the model or the key)."
        count = len(self.problems)
        return f"Not ready: {count} problem{'s' if count > 1 else ''} above."

    def text(self) -> str:
        """The rows as aligned plain text."""
        rows = self.rows()
        width = max(len(part) for part, _ in rows)
        return "\n".join(f"{part.ljust(width)}  {value}" for part, value in rows)

    def __str__(self) -> str:
        return f"{self.text()}\n{self.verdict()}"

    def __repr__(self) -> str:  # a console shows the report, not its fields
        return str(self)

    def _repr_html_(self) -> str:
        import html

        from ..present.html import table_html

        return (table_html(("", "in use"), self.rows(), "yart-status")
                + f'<div style="font:12px monospace;opacity:.8">{html.escape(self.verdict())}</div>')


async def check_setup(settings: Settings) -> SetupReport:
    """Resolve the endpoint and credentials as a generation would (the embedded emulator starts if it
    is the endpoint), read the store, and say what stands in the way; nothing is sent to the service."""
    client = shared_client(settings)
    described = connection_problem = folder_problem = endpoint_problem = None
    try:
        await client.open()
        described = client.credentials.describe() if client.credentials else None
    except errors.YandexArtError as exc:
        connection_problem = f"{type(exc).__name__}: {exc}"
    try:
        check_secure(client.base_url)  # what every request would be refused for
    except errors.YandexArtError as exc:
        endpoint_problem = f"{type(exc).__name__}: {exc}"
    try:
        settings.model()  # a short model name needs the folder: its own one-line reason
    except errors.RequestValidationError as exc:
        folder_problem = f"{type(exc).__name__}: {exc}"
    location = settings.store_location
    records = unfinished = 0
    store_problem = None
    try:
        store = get_store(location)
        records, unfinished = await asyncio.to_thread(
            lambda: (store.count(), len(store.pending()) + len(store.unsent())))
    except errors.YandexArtError as exc:  # a team's database out of reach: a problem to show, not a crash
        store_problem = f"{type(exc).__name__}: {exc}"
    return SetupReport(
        endpoint=client.base_url, folder=settings.folder, credentials=described, model=settings.model_spec(),
        store=redacted_url(location) if is_team_location(location) else str(location), records=records,
        unfinished=unfinished, connection_problem=connection_problem, endpoint_problem=endpoint_problem,
        folder_problem=folder_problem, store_problem=store_problem, unread=unread_variables(),
        reuse_samples=settings.reuse_samples)
