"""The one owner of settings in a process: every face asks :func:`current` for its snapshot.

``%config YandexArt.NAME = VALUE`` and ``c.YandexArt.NAME`` in ``ipython_config.py`` set the
traits of the :class:`YandexArt` configurable; :func:`configure` does the same from plain Python.
A trait left unset (None) falls through to the environment, then the default
(see :class:`~.config.Settings` for the table and the precedence).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from traitlets import Bool, Float, Int, TraitError, TraitType, Unicode, validate
from traitlets.config import Configurable

from .config import SETTINGS, Settings
from .errors import ConfigurationError
from .typos import closest

_TRAITS: dict[str, type[TraitType[Any, Any]]] = {"str": Unicode, "int": Int, "float": Float, "bool": Bool}
NAMES = tuple(spec.name for spec in SETTINGS)


def _trait(name: str) -> TraitType[Any, Any]:
    spec = next(s for s in SETTINGS if s.name == name)
    kind = str(spec.type).split(" ")[0].split("|")[0].strip()
    default = "unset" if spec.default is None else repr(spec.default)
    help_text = f"{spec.metadata['help']} Unset: ${spec.metadata['env']}, else {default}."
    return _TRAITS[kind](None, allow_none=True, help=help_text).tag(config=True)


def _check(self: Configurable, proposal: Any) -> Any:
    """Refuse a value that makes the settings invalid, with the reason, before it is kept."""
    name, value = proposal["trait"].name, proposal["value"]
    if name == "store" and value and urlsplit(str(value)).password:
        raise TraitError("YandexArt.store refused: it holds a password, which a notebook would save; give the URL "
                         "without it and the password in PGPASSWORD or ~/.pgpass, or the whole URL in YANDEXART_STORE")
    try:
        snapshot(self).replace(**{name: value})
    except ConfigurationError as exc:
        raise TraitError(f"YandexArt.{name} = {value!r} refused: {exc}") from None
    return value


#: ``%config YandexArt`` lists these; one trait per row of :data:`~.config.SETTINGS`.
YandexArt: type[Configurable] = type("YandexArt", (Configurable,), {
    "__doc__": "Settings of yart_jupyter (%config YandexArt.NAME = VALUE); unset ones use the environment.",
    "__module__": __name__,
    **{name: _trait(name) for name in NAMES},
    "_check": validate(*NAMES)(_check),
})

_owner: Configurable | None = None


def owner() -> Configurable:
    """The process's settings object (made on first use; the extension attaches it to the shell)."""
    global _owner
    if _owner is None:
        _owner = YandexArt()
    return _owner


def configured(instance: Configurable | None = None) -> dict[str, Any]:
    """The settings given through ``%config`` or :func:`configure` (unset ones left out)."""
    values = (instance or owner()).trait_values()
    return {name: values[name] for name in NAMES if values.get(name) is not None}


def snapshot(instance: Configurable | None = None, **overrides: Any) -> Settings:
    """Resolve ``instance``'s settings against the environment and ``overrides``."""
    return Settings.resolve(configured(instance), os.environ, overrides)


def current(**overrides: Any) -> Settings:
    """The settings every face uses now; ``overrides`` are a call's own arguments (None: not given)."""
    return snapshot(None, **overrides)


def configure(**values: Any) -> Settings:
    """Set settings from Python, as ``%config YandexArt.NAME = VALUE`` does; None unsets one."""
    unknown = set(values) - set(NAMES)
    if unknown:
        name = sorted(unknown)[0]
        near = closest(name, NAMES)
        meant = f"did you mean {near}? " if near else ""
        raise ConfigurationError(f"unknown setting {name!r}; {meant}the settings are: {', '.join(NAMES)}")
    target = owner()
    try:
        for name, value in values.items():
            setattr(target, name, value)
    except TraitError as exc:
        raise ConfigurationError(str(exc)) from None
    return current()


def attach(shell: Any) -> Configurable:
    """Make the settings object the shell's (``%config`` and ``ipython_config.py`` reach it)."""
    global _owner
    previous = configured() if _owner is not None else {}
    _owner = YandexArt(parent=shell)
    for name, value in previous.items():
        if _owner.trait_values().get(name) is None:
            setattr(_owner, name, value)
    if _owner not in shell.configurables:
        shell.configurables.append(_owner)
    return _owner


def detach(shell: Any) -> None:
    """Forget the shell's settings object (``%unload_ext``); shell.config keeps what was set."""
    global _owner
    shell.configurables[:] = [c for c in shell.configurables if not isinstance(c, YandexArt)]
    _owner = None


def reference() -> str:
    """Every setting as a Markdown table (the documentation site's reference is generated from it)."""
    rows = ["| setting | default | environment | what it does |", "|---|---|---|---|"]
    for spec in SETTINGS:
        default = "unset" if spec.default is None else f"`{spec.default}`"
        rows.append(f"| `{spec.name}` | {default} | `{spec.metadata['env']}` | {spec.metadata['help']} |")
    return "\n".join(rows)
