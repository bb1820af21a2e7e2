"""Where the tests find the photograph: ``../shared/testdata`` beside the checkout (YART_SHARED overrides),
else the copy in ``tests/data`` (a bare clone)."""

from __future__ import annotations

import os
from pathlib import Path

#: The real photograph at the service's size: anything whose result depends on compression uses it.
SHARED = Path(os.environ.get("YART_SHARED", Path(__file__).resolve().parent.parent.parent / "shared")) / \
    "testdata" / "photo-1024.jpg"
PHOTO = SHARED if SHARED.exists() else Path(__file__).resolve().parent / "data" / "photo-1024.jpg"


def photo_bytes() -> bytes:
    """The photograph's bytes, with a clear message when shared/ is not where it should be."""
    assert PHOTO.exists(), f"{PHOTO} is missing (tests/data keeps a copy of shared/testdata)"
    return PHOTO.read_bytes()
