"""The ipywidgets form: another thin face on the engine, which never blocks the kernel.

Generate starts a task on the kernel's loop and returns at once; each job shows its progress and
then its pictures in a gallery (newest first). Widgets never carry a secret: credentials come from
the environment or configuration, and the form only shows where they came from, redacted.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import ipywidgets as w

from ..clients.shared import shared_client
from ..core import errors
from ..core.config import Settings
from ..core.request import ASPECT_PRESETS, MAX_TEXT, AspectRatio, GenerationRequest, Message, random_seed
from ..core.settings import current
from ..core.status import BatchStatus
from ..engine import Batch, prepare, run_in_view, server_canceller
from ..engine.jobs import JOBS, Job
from ..media.image import GeneratedImage
from ..present.html import ERROR as _ERROR
from ..present.html import MUTED as _MUTED
from ..present.html import span as _html
from ..present.live import StaticCopy
from ..store import get_store
from .cards import ImageCard, JobCard, MessageRow

CUSTOM = "custom W:H"

class YandexArtForm(w.VBox):  # type: ignore[misc]
    """The form; ``yart_jupyter.form()`` shows one."""

    def __init__(self, settings: Settings | None = None) -> None:
        #: The settings this form was made with; Generate reads the current ones again.
        self.settings = settings or current()
        self.setup = w.HTML(_html("resolving credentials ..."))
        self.prompt = w.Textarea(placeholder="Describe the picture, e.g. a lighthouse on a cliff at dawn",
                                 layout=w.Layout(width="100%", height="80px"))
        self.counter = w.HTML(_html(f"0/{MAX_TEXT}"))
        self.messages = w.VBox([])
        self.add_message = w.Button(description="Add message", icon="plus", tooltip="Add a weighted message",
                                    layout=w.Layout(width="auto", align_self="flex-start"))
        self.seed = w.Text(placeholder="random", description="Seed", layout=w.Layout(width="260px"),
                           style={"description_width": "40px"})
        self.random_button = w.Button(icon="random", tooltip="A new random seed", layout=w.Layout(width="36px"))
        self.keep_seed = w.Checkbox(value=False, description="keep seed", indent=False, layout=w.Layout(width="100px"))
        choices = model_choices(self.settings)
        configured = self.settings.model_spec()
        self.model = w.Dropdown(options=choices, value=configured.name if configured.known else choices[-1][1],
                                description="Model", layout=w.Layout(width="420px"),
                                style={"description_width": "45px"})
        self.seed_note = w.HTML("")
        self.aspect = w.Dropdown(
            options=[(f"{name} ({w_}:{h})", f"{w_}:{h}") for name, (w_, h) in ASPECT_PRESETS.items()] + [
                (CUSTOM, CUSTOM)],
            value=None, description="Aspect", layout=w.Layout(width="230px"), style={"description_width": "50px"},
        )
        self.custom_aspect = w.Text(placeholder="W:H", layout=w.Layout(width="80px", display="none"))
        self.count = w.BoundedIntText(value=1, min=1, max=self.settings.max_images, description="Count",
                                      layout=w.Layout(width="130px"), style={"description_width": "45px"})
        self.save_folder = w.Text(value="yandexart-images", description="Save to",
                                  layout=w.Layout(width="320px"), style={"description_width": "50px"})
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="paint-brush")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.problem = w.HTML("")
        self.comparison = w.HTML("")
        self.comparison.add_class("yart-form-compare")
        self.gallery = w.VBox([])
        #: Every picture the form made, left in the notebook as plain output.
        self.copy = StaticCopy()
        self.jobs: list[Job] = []
        self._ready = False
        self._setup_error: str | None = None
        super().__init__([
            w.HTML('<b style="font-size: 14px">YandexART</b>'), self.setup,
            self.prompt, self.counter, self.messages, self.add_message,
            w.HBox([self.model, self.seed, self.random_button, self.keep_seed, self.seed_note],
                   layout=w.Layout(flex_flow="row wrap", align_items="center")),
            w.HBox([self.aspect, self.custom_aspect, self.count, self.save_folder],
                   layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.generate_button, self.cancel_button, self.problem], layout=w.Layout(align_items="center")),
            self.comparison, self.gallery, w.HTML(self.copy.hide_rule()),
        ], layout=w.Layout(width="100%", max_width="980px"))
        self.add_class("yart-form")
        self._show_aspect(AspectRatio.parse(self.settings.default_aspect))
        for widget in (self.prompt, self.seed, self.aspect, self.custom_aspect, self.count):
            widget.observe(lambda _: self.validate(), "value")
        self.aspect.observe(self._aspect_changed, "value")
        self.model.observe(lambda _: self._model_changed(), "value")
        self._model_changed()
        self.add_message.on_click(lambda _: self.add_message_row())
        self.random_button.on_click(lambda _: self.new_seed())
        self.generate_button.on_click(lambda _: self.generate())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.validate()
        self._setup_task: asyncio.Task[None] | None = None
        try:
            self._setup_task = asyncio.get_running_loop().create_task(self._describe_setup())
        except RuntimeError:
            self.setup.value = _html("(credentials are checked when the kernel's loop runs)")

    def _ipython_display_(self) -> None:
        """Show the form, and under it the place of its static copy."""
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)  # type: ignore[no-untyped-call]
        self.copy.show()

    def cards(self) -> list[ImageCard]:
        """Every picture card of the gallery, newest job first."""
        return [card for job in self.gallery.children for card in job.images.children if isinstance(card, ImageCard)]

    def show_comparison(self) -> None:
        """The ticked cards side by side (as ``%yandexart compare`` shows them), or a hint with one ticked."""
        from ..experiments.comparison import Comparison, resolve

        picked = [card.image for card in self.cards() if card.pick.value]
        if len(picked) < 2:
            self.comparison.value = _html("tick one more picture to compare") if picked else ""
            return
        self.comparison.value = Comparison([resolve(image, None) for image in picked]).bundle()["text/html"]

    # -- setup -------------------------------------------------------------------------------

    async def _describe_setup(self) -> None:
        """Show which credentials, folder and endpoint are in use, secrets redacted."""
        self.setup.value, self._setup_error = await setup_line(self.settings)
        if self._setup_error:
            self.validate()

    # -- messages, seeds, aspect ----------------------------------------------------------------

    def add_message_row(self) -> MessageRow:
        row = MessageRow(self.validate, self._remove_row)
        row.weight.disabled = not current().model_spec(self.model.value).messages  # a weight it would not send
        self.messages.children = (*self.messages.children, row)
        self.validate()
        return row

    def _remove_row(self, row: MessageRow) -> None:
        self.messages.children = tuple(r for r in self.messages.children if r is not row)
        self.validate()

    def new_seed(self) -> int:
        seed = random_seed()
        self.seed.value = str(seed)
        return seed

    def reuse_seed(self, image: GeneratedImage) -> None:
        """Put a picture's seed (and aspect) back in the form and keep it."""
        self.seed.value = str(image.seed)
        self.keep_seed.value = True
        if image.aspect is not None:
            self._show_aspect(image.aspect)

    def _show_aspect(self, aspect: AspectRatio) -> None:
        ratio = str(aspect)
        if ratio in [v for _, v in self.aspect.options]:
            self.aspect.value = ratio
        else:
            self.aspect.value = CUSTOM
            self.custom_aspect.value = ratio

    def _model_changed(self) -> None:
        """A model without seeds turns the seed field off, one that takes one prompt the weights, and
        says why; the rest validates anew."""
        spec = current().model_spec(self.model.value)
        for widget in (self.seed, self.random_button, self.keep_seed):
            widget.disabled = not spec.seeds
        for row in self.messages.children:  # a model that takes one prompt is sent no weight
            row.weight.disabled = not spec.messages
        if spec.seeds:
            self.seed.placeholder = "random"
            self.seed_note.value = ""
        else:
            self.seed.value = ""
            self.seed.placeholder = "no seed"
            joined = "" if spec.messages else "; extra messages are joined into one prompt, their weights not sent"
            self.seed_note.value = _html(f"{spec.name} takes no seed: every picture is new (Count gives samples)"
                                         f"{joined}", _MUTED)
        self.validate()

    def _aspect_changed(self, change: Any) -> None:
        self.custom_aspect.layout.display = "block" if change["new"] == CUSTOM else "none"

    # -- validation --------------------------------------------------------------------------

    def _messages(self) -> list[Message]:
        items = [Message(self.prompt.value, 1.0)]
        for row in self.messages.children:
            weight = row.weight.value
            items.append(Message(row.text.value, weight if weight is not None else math.nan))
        return items

    def _aspect_value(self) -> str:
        """The chosen ratio; "custom" with its field left empty is refused (not sent as the default)."""
        if self.aspect.value != CUSTOM:
            return str(self.aspect.value)
        if not self.custom_aspect.value.strip():
            raise errors.RequestValidationError("aspect", "", "write the custom ratio as W:H beside the list, e.g. 5:4")
        return str(self.custom_aspect.value)

    def validate(self) -> str | None:
        """Check every field; disable Generate and say why when something is wrong."""
        length = len(self.prompt.value.strip())
        over = length > MAX_TEXT
        self.counter.value = _html(f"{length}/{MAX_TEXT}", _ERROR if over else _MUTED)
        problem = self._setup_error and "fix the setup above first (the credentials or the endpoint)"
        if problem is None:
            try:
                self._requests(current())
            except (errors.RequestValidationError, errors.ConfigurationError) as exc:
                problem = str(exc)
        self.generate_button.disabled = problem is not None
        self.problem.value = _html(problem, _ERROR) if problem else ""
        return problem

    # -- generating --------------------------------------------------------------------------

    def _requests(self, settings: Settings, base_seed: int | None = None) -> list[GenerationRequest]:
        """Every request of one click (seeds from ``base_seed`` on), validated against ``settings``; without
        ``base_seed``, the one request that validation needs. Nothing is sent."""
        limit = settings.max_images
        count = self.count.value or 0
        if not 1 <= count <= limit:
            raise errors.RequestValidationError("count", count, f"must be from 1 to {limit} (the max_images setting)")
        seeds: list[int | str | None] = (
            [min(base_seed + i, 2**63 - 1) for i in range(count)] if base_seed is not None
            else [None] * count if self.seed.disabled
            else [self.seed.value.strip() or None]
        )
        model = self.model.value
        if settings.model_uri and settings.model_spec().name == model:
            model = settings.model_uri  # the configured model keeps its own folder
        return [settings.request(self._messages(), seed=seed, aspect=self._aspect_value(), model_uri=model)
                for seed in seeds]

    def generate(self) -> Job | None:
        """Start a job on the kernel's loop and return at once."""
        if self.validate() is not None:
            return None
        seeded = not self.seed.disabled
        if seeded and (not self.keep_seed.value or not self.seed.value.strip()):
            self.new_seed()
        settings = current()
        try:
            requests = self._requests(settings, int(self.seed.value) if seeded else None)
        except errors.YandexArtError as exc:
            self.problem.value = _html(str(exc), _ERROR)
            return None
        card = JobCard(f"{len(requests)} × {requests[0].prompt[:80]}")
        card.form = self
        self.gallery.children = (card, *self.gallery.children)
        status = BatchStatus(len(requests))
        store = get_store(settings.store_location)
        batch = prepare(store, Batch(requests), status)  # recorded before the click returns
        job = JOBS.submit(self._run(settings, card, batch, status), f"form: {requests[0].prompt[:40]}", status)
        self.jobs.append(job)
        self.cancel_button.disabled = False
        job.task.add_done_callback(lambda _: self._job_finished(job))
        return job

    async def _run(self, settings: Settings, card: JobCard, batch: Batch, status: BatchStatus) -> list[GeneratedImage]:
        store = get_store(settings.store_location)
        return list(await run_in_view(shared_client(settings), store, batch, card, status=status))

    def _job_finished(self, job: Job) -> None:
        self.jobs.remove(job)
        self.cancel_button.disabled = not self.jobs

    def cancel(self) -> None:
        """Cancel the form's running jobs (and their operations on the server)."""
        running = [job for job in self.jobs if job.state == "running"]
        if running:
            settings = current()
            canceller = server_canceller(shared_client(settings), get_store(settings.store_location))
            asyncio.get_running_loop().create_task(JOBS.cancel(running, cancel_remote=canceller))


async def setup_line(settings: Settings) -> tuple[str, str | None]:
    """The form's setup line (endpoint, folder, credentials; secrets redacted; why the configured
    model may not serve; a mistyped variable), and the error if the credentials could not be resolved or the endpoint
    would be refused every request."""
    from ..engine.setup import check_setup

    report = await check_setup(settings)
    problem = report.connection_problem or report.endpoint_problem
    if problem:
        return _html(problem, _ERROR), problem
    parts = dict(report.rows())
    line = " · ".join(f"{part} {parts[part]}" for part in ("endpoint", "folder", "credentials"))
    return _html(line) + "".join(f"<br>{_html(note, _ERROR)}" for note in report.notes()), None


def model_choices(settings: Settings) -> list[tuple[str, str]]:
    """The form's models: the catalogue's, and the configured one when the catalogue does not list it."""
    from ..core.models import API_NAMES, CATALOGUE

    choices = [(f"{spec.name} · {API_NAMES[spec.api]}{'' if spec.seeds else ' · no seed'}", spec.name)
               for spec in CATALOGUE.values()]
    configured = settings.model_spec()
    if not configured.known and settings.model_uri:
        choices.append((f"{settings.model_uri} · {API_NAMES[configured.api]}", settings.model_uri))
    return choices


def form() -> YandexArtForm:
    """A new YandexART form; the last line of a cell (or ``display()``) shows it."""
    return YandexArtForm()
