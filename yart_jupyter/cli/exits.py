"""The ``yart`` command's exit codes, which scripts can test: 0 everything done, 1 some generations
failed (or the daily quota left rows for later, or ``rerun --check`` found other pixels), 2 invalid
input (nothing was sent), 130 interrupted, 141 its output's reader stopped reading."""

OK, FAILED, INVALID, INTERRUPTED, BROKEN_PIPE = 0, 1, 2, 130, 141
