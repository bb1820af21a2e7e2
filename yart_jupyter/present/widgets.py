"""Widgets made cheaply: shared layouts and styles for the parts whose look never changes.

Each widget is a message to the browser and about a millisecond of the kernel's loop, with one more
for its layout and one for its style unless they are given; views of many widgets (the form's
cards, the full-size buttons) are also built a widget per turn of the loop (:mod:`..core.steps`).
"""

from __future__ import annotations

from functools import cache

import ipywidgets as w
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle


@cache
def fixed_layout(**css: str) -> w.Layout:
    """One layout shared by every widget whose layout is ``css`` and never changes."""
    return w.Layout(**css)


@cache
def button_style() -> w.ButtonStyle:
    """The one style of every button (buttons never change their style here)."""
    return w.ButtonStyle()


@cache
def html_style() -> HTMLStyle:
    """The one style of every HTML widget."""
    return HTMLStyle()


@cache
def checkbox_style() -> CheckboxStyle:
    """The one style of every check box."""
    return CheckboxStyle()


@cache
def text_style() -> TextStyle:
    """The one style of every text area."""
    return TextStyle()
