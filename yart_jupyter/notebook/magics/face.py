"""What a magic command may touch: the shell's namespace, the cell's output, the shared engine."""

from __future__ import annotations

import keyword
import os
from typing import TYPE_CHECKING, Any

from ...core.config import Settings
from ...core.errors import RequestValidationError
from ...core.settings import current

if TYPE_CHECKING:
    from ...clients.client import YandexArtClient
    from ...store import Store


class Face:
    """The notebook face of one command: settings, store and client, output, and ``_``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.settings: Settings = current()

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns  # type: ignore[no-any-return]

    def client(self) -> YandexArtClient:
        """The running loop's shared client for these settings."""
        from ...clients.shared import shared_client

        return shared_client(self.settings)

    def store(self) -> Store:
        """The local store of these settings."""
        from ...store import get_store

        return get_store(self.settings.store_location)

    def show(self, bundle: dict[str, Any]) -> None:
        from IPython.display import display

        display(bundle, raw=True)  # type: ignore[no-untyped-call]

    def display(self, obj: Any) -> None:
        """Display an object (a widget, an image) in this cell."""
        from IPython.display import display

        display(obj)  # type: ignore[no-untyped-call]

    def set_result(self, value: Any, var: str | None = None) -> None:
        """Make ``value`` the cell's value (``_``, ``Out[n]``) without displaying it twice; ``--var`` too."""
        if var:
            self.user_ns[var] = value
        self.shell.displayhook.update_user_ns(value)

    def notebook_name(self) -> str | None:
        """The notebook this kernel serves, when the frontend says (Jupyter Server sets it)."""
        name = self.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
        return str(name) if name else None


def check_var(name: str | None) -> None:
    """``--var`` must name a Python variable."""
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise RequestValidationError("--var", name, "must be a valid Python name")
