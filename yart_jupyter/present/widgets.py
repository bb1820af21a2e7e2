"""Widgets made cheaply: shared layouts and styles, and views built a few widgets per turn of the loop.

Each widget is a message to the browser and about a millisecond of the kernel's loop, with one more
for its layout and one for its style unless they are given. Parts whose look never changes share
one layout and one style, and a view of many widgets is built as :mod:`~..core.steps`.
"""

from __future__ import annotations

from functools import cache

import ipywidgets as w
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

#: How many widgets are made between two turns of the loop.
WIDGETS_PER_STEP = 3


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
