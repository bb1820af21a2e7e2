"""A batch's dataset folder: the ``metadata.jsonl`` of the Hugging Face ``imagefolder`` layout, and its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.request import GenerationRequest
from ..media.image import GeneratedImage, write_atomic
from .plan import Row

#: The file of a dataset folder that ``datasets.load_dataset("imagefolder", data_dir=...)`` reads.
METADATA = "metadata.jsonl"


#: The generation's part of a metadata line (a row's own column of the same name is kept as it is).
GENERATED = ("prompt", "seed", "aspect", "mime_type", "model_uri", "model_version", "operation_id", "duration")


def metadata_line(row: Row, image: GeneratedImage, root: Path) -> dict[str, Any]:
    """A ``metadata.jsonl`` line: ``file_name`` (relative to the folder), the row's columns, the record."""
    assert row.path is not None
    line: dict[str, Any] = {"file_name": row.path.resolve().relative_to(root.resolve()).as_posix()}
    line.update({key: value for key, value in row.values.items() if key != "file_name"})
    record = {"prompt": image.prompt, "seed": image.seed, "aspect": str(image.aspect) if image.aspect else None,
              "mime_type": image.mime_type, "model_uri": image.model_uri, "model_version": image.model_version,
              "operation_id": image.operation_id,
              "duration": round(image.duration, 3) if image.duration is not None else None}
    for key, value in record.items():
        line[key if key not in line else f"generated_{key}"] = value
    line["row"] = row.number
    return line


class Metadata:
    """``metadata.jsonl`` of a dataset folder: lines appended as rows finish (a crash keeps what was
    written), compacted at the end of each run (one line per file, the newest)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / METADATA
        self.lines: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for text in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    line = json.loads(text)
                except ValueError:
                    continue  # a line cut short by a crash: its row is made again from the store
                if isinstance(line, dict) and isinstance(line.get("file_name"), str):
                    self.lines[line["file_name"]] = line

    def has(self, file_name: str, request: GenerationRequest) -> bool:
        """Whether an earlier run wrote this file for exactly this request."""
        line = self.lines.get(file_name)
        return line is not None and (line.get("generated_seed", line.get("seed")) == request.seed
                               and line.get("generated_prompt", line.get("prompt")) == request.prompt)

    def model_version(self, path: Path) -> str | None:
        """The model version an earlier run's line records for the picture at ``path``."""
        line = self.lines.get(path.resolve().relative_to(self.root.resolve()).as_posix(), {})
        version = line.get("generated_model_version", line.get("model_version"))
        return version if isinstance(version, str) and version else None

    def append(self, line: dict[str, Any]) -> None:
        self.lines[line["file_name"]] = line
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    def compact(self) -> None:
        """Rewrite the file with one line per picture, in row order (atomically)."""
        if self.lines:
            ordered = sorted(self.lines.values(), key=lambda line: (str(line.get("row", "")).zfill(12),
                                                                    line["file_name"]))
            text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in ordered)
            write_atomic(self.path, text.encode("utf-8"))


def carries_recipe(path: Path, request: GenerationRequest) -> bool:
    """Whether the file at ``path`` embeds this request's recipe: an earlier run wrote it and was
    stopped before its metadata line (a kill between the two writes), so it is ours to complete."""
    from ..core.provenance import ProvenanceError, read_recipe

    try:
        recipe = read_recipe(path.read_bytes())
    except (OSError, ProvenanceError):
        return False
    messages = [(m.get("text"), m.get("weight")) for m in recipe["messages"] if isinstance(m, dict)]
    return (recipe.get("seed") == request.seed and recipe.get("model_uri") == request.model_uri
            and messages == [(m.text, m.weight) for m in request.messages])


def write_row(row: Row, image: GeneratedImage, root: Path | None, metadata: Metadata | None) -> None:
    assert row.path is not None
    if not row.path.exists():
        image.save(row.path)
    if metadata is not None and root is not None:
        metadata.append(metadata_line(row, image, root))
