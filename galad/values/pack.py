"""The compact training set shipped with the project, so that the default value model trains offline.

``commonsense_models/data/`` holds what the default recipe reads from the datasets, derived by ``galad data pack``
from a full data directory: the training pools it draws on and every held-out set its card measures (text, label,
source; deduplicated), and the Social-Chem situations used as distractor contexts. One gzip file per dataset,
written byte-for-byte reproducibly, each with its sha256 in ``manifest.json``; the licence and attribution of each
source are in the folder's README. When no data directory is set and none was downloaded, the datasets are read
from there (:func:`galad.values.data.read_source_data`, :func:`galad.values.data.read_pack`), and training from
them gives the same rows, in the same order, as training from the data directory they were packed from.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

from galad.atomic import atomic_dir
from galad.values.data import CONTEXTS_FILE, MANIFEST, Example, mix_pools, pack_dir, read_data_dir
from galad.values.recipe import Recipe, load_recipe

FILE_OF_POOL = {"ethics_cm": "ethics_cm.jsonl.gz", "moral_stories": "moral_stories.jsonl.gz",
                "social_chem": "social_chem.jsonl.gz", "social_chem_judged": "social_chem.jsonl.gz"}
"""The file each pool (and the held-out sets of the same dataset) is packed into."""
MAX_FILE_BYTES = 2 * 1024 * 1024
"""No packed file may be larger (the shipped set stays small)."""


def _file_of_eval(name: str) -> str:
    return FILE_OF_POOL["moral_stories" if name.startswith("moral_stories")
                        else "social_chem" if name.startswith("social_chem") else "ethics_cm"]


def _gzip(data: bytes) -> bytes:
    """Gzip with no name or time in the header: the same rows give the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def _row(e: Example, where: str) -> dict:
    row = {"in": where, "text": e.text, "label": e.label, "source": e.source}
    if e.long:
        row["long"] = True
    return row


def build_pack(data_dir: Path, out: Path | None = None, recipe: Recipe | None = None) -> dict:
    """Pack what ``recipe`` (default: the default recipe) reads from ``data_dir`` into ``out`` (default:
    :func:`pack_dir`), atomically; the folder's other files (its README) are kept. Returns the manifest.

    Raises:
        DataNotFoundError: a dataset is missing from ``data_dir``.
        ValueError: a packed file would exceed :data:`MAX_FILE_BYTES`.
    """
    recipe = recipe or load_recipe(None)
    data = read_data_dir(Path(data_dir), recipe.data.sources)
    pools = mix_pools(recipe.data)
    rows: dict[str, list[dict]] = {}
    for pool in pools:
        rows.setdefault(FILE_OF_POOL[pool], []).extend(_row(e, f"pool:{pool}") for e in data.pools[pool])
    for name, exs in data.evals.items():
        rows.setdefault(_file_of_eval(name), []).extend(_row(e, f"eval:{name}") for e in exs)
    blobs = {f: _gzip("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rs).encode())
             for f, rs in sorted(rows.items())}
    blobs[CONTEXTS_FILE] = _gzip("".join(c.replace("\n", " ") + "\n" for c in data.contexts).encode())
    too_big = [f"{f} ({len(b)} bytes)" for f, b in blobs.items() if len(b) > MAX_FILE_BYTES]
    if too_big:
        raise ValueError(f"packed files over {MAX_FILE_BYTES} bytes: {', '.join(too_big)}")
    manifest = {"recipe": recipe.name, "pools": pools, "evals": list(data.evals),
                "files": {f: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b),
                              "rows": len(rows.get(f, data.contexts))} for f, b in blobs.items()}}
    out = Path(out) if out is not None else pack_dir()
    with atomic_dir(out) as tmp:
        if out.is_dir():  # keep the README (licences and attribution) and anything else beside the data
            for old in out.iterdir():
                if old.is_file() and old.name not in blobs and old.name != MANIFEST:
                    (tmp / old.name).write_bytes(old.read_bytes())
        for f, b in blobs.items():
            (tmp / f).write_bytes(b)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
