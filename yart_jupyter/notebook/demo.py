"""``make demo``: run the quickstart notebook headless on the embedded emulator, write HTML."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from .runner import run_notebook, write_outputs


def main(argv: list[str] | None = None) -> None:
    """Execute the notebook in a real kernel (no credentials needed) and print the HTML's path."""
    parser = argparse.ArgumentParser(prog="python -m yart_jupyter.notebook.demo", description=__doc__)
    parser.add_argument("notebook", nargs="?", default="notebooks/quickstart.ipynb")
    parser.add_argument("--out", default="demo-output")
    args = parser.parse_args(argv)
    source = Path(args.notebook)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # One run's pictures: the previous run's go (saved files are never overwritten, so a second
    # `make demo` would otherwise stop at its first --grid-out); the store is kept.
    shutil.rmtree(out / f"{source.stem}-images", ignore_errors=True)
    os.environ["YANDEXART_BASE_URL"] = "emulator"  # the kernel inherits it: never the real service here
    os.environ.setdefault("YANDEXART_EMULATOR_DURATION", "lognormal:2:0.3:0.5:5")
    os.environ.setdefault("YANDEXART_HOME", str(out / "store"))  # the demo's records stay beside its output
    print(f"Running {source} on the embedded emulator ...", flush=True)
    notebook = run_notebook(source, workdir=out)
    images = sum(
        output.get("data", {}).get("text/html", "").count("<img ")
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )
    ipynb, html = write_outputs(notebook, out, source.stem)
    print(f"Executed {ipynb}\n{images} images inline in {html}\nOpen it with: xdg-open {html}")
    if images == 0:
        sys.exit("no image was produced")


if __name__ == "__main__":
    main()
