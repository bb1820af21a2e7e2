"""yart_jupyter: YandexART image generation from Jupyter notebooks.

``%load_ext yart_jupyter`` for the magic; ``await yart_jupyter.generate(...)`` for code;
:class:`YandexArtClient` for full control. Heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what users' type checkers see: every public name with its real type
    from . import errors
    from .api import batch, generate, history, load_experiment, prune, rerun, resume, status, submit
    from .clients.client import Progress, YandexArtClient
    from .core.provenance import info
    from .core.request import AspectRatio, GenerationRequest, Message, build_request
    from .core.settings import configure
    from .experiments.comparison import compare
    from .experiments.experiment import Experiment
    from .media.image import GeneratedImage
    from .notebook.widget import form
    from .store import Store

__all__ = [
    "AspectRatio",
    "Experiment",
    "GeneratedImage",
    "GenerationRequest",
    "Message",
    "Progress",
    "Store",
    "YandexArtClient",
    "__version__",
    "batch",
    "build_request",
    "compare",
    "configure",
    "errors",
    "form",
    "generate",
    "history",
    "info",
    "load_experiment",
    "prune",
    "rerun",
    "resume",
    "status",
    "submit",
]

_LAZY = {
    "YandexArtClient": ("clients.client", "YandexArtClient"),
    "Progress": ("clients.client", "Progress"),
    "GeneratedImage": ("media.image", "GeneratedImage"),
    "GenerationRequest": ("core.request", "GenerationRequest"),
    "Message": ("core.request", "Message"),
    "AspectRatio": ("core.request", "AspectRatio"),
    "build_request": ("core.request", "build_request"),
    "generate": ("api", "generate"),
    "submit": ("api", "submit"),
    "info": ("core.provenance", "info"),
    "resume": ("api", "resume"),
    "rerun": ("api", "rerun"),
    "configure": ("core.settings", "configure"),
    "history": ("api", "history"),
    "form": ("notebook.widget", "form"),
    "prune": ("api", "prune"),
    "Store": ("store", "Store"),
    "errors": ("errors", None),
    "Experiment": ("experiments.experiment", "Experiment"),
    "compare": ("experiments.comparison", "compare"),
    "load_experiment": ("api", "load_experiment"),
    "batch": ("api", "batch"),
    "status": ("api", "status"),
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use, so loading the extension stays fast."""
    if name not in _LAZY:
        raise AttributeError(f"module 'yart_jupyter' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext yart_jupyter``: register ``%%yandexart`` and ``%yandexart``."""
    from .notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext yart_jupyter``: remove them cleanly."""
    from .notebook.magics import unload

    unload(ipython)
