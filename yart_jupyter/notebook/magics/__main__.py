"""``python -m yart_jupyter.notebook.magics README.md``: rewrite the README's option table from the parsers."""

import sys

from .commands import rewrite_readme

print("updated" if rewrite_readme(sys.argv[1] if len(sys.argv) > 1 else "README.md") else "up to date")
