"""``python -m yart_jupyter.cli``: the ``yart`` command."""

from .main import entry

entry()
