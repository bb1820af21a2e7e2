"""Where the tests find ``../shared/testdata`` (beside the checkout, in CI too; YART_SHARED overrides)."""

from __future__ import annotations

import os
from pathlib import Path

#: The real photograph at the service's size: anything whose result depends on compression uses it.
PHOTO = Path(os.environ.get("YART_SHARED", Path(__file__).resolve().parent.parent.parent / "shared")) / \
    "testdata" / "photo-1024.jpg"


def photo_bytes() -> bytes:
    """The photograph's bytes, with a clear message when shared/ is not where it should be."""
    assert PHOTO.exists(), f"{PHOTO} is missing: shared/ must lie beside the checkout (or set YART_SHARED)"
    return PHOTO.read_bytes()
