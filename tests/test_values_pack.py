"""The compact training set shipped with the project: reproducible from the datasets, the same training rows as
the data directory it was packed from, read when no data directory is set, and refused by name when corrupt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from galad.errors import DataCorruptError, DataNotFoundError
from galad.values import data as vdata
from galad.values import pack
from galad.values.data import load_splits, read_data_dir, read_manifest, read_pack, read_source_data
from galad.values.recipe import DataMix, Recipe, load_recipe

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    import os

    return Path(os.environ.get("GALAD_DATA_DIR") or REPO.parent / "shared" / "data")


def _need_data() -> Path:
    data = _data_dir()
    if not (data / "moral_stories" / "original_ms_action+norm_norm_distance_train.jsonl").is_file():
        pytest.skip(f"the full value-model datasets are not at {data} (set GALAD_DATA_DIR)")
    return data


def test_shipped_files_are_small_and_match_their_manifest():
    manifest = read_manifest()
    assert manifest["recipe"] == load_recipe(None).name
    for name, meta in manifest["files"].items():
        path = vdata.pack_dir() / name
        assert path.stat().st_size == meta["bytes"] <= pack.MAX_FILE_BYTES, name
    data = read_pack()
    assert set(data.pools) == set(manifest["pools"]) and all(data.pools.values())
    assert len(data.contexts) == manifest["files"][vdata.CONTEXTS_FILE]["rows"]
    assert (vdata.pack_dir() / "README.md").is_file()  # the licences and attribution beside the data


def test_pack_is_rebuilt_byte_for_byte_from_the_datasets(tmp_path):
    data = _need_data()
    out = tmp_path / "pack"
    manifest = pack.build_pack(data, out)
    assert manifest == json.loads((vdata.pack_dir() / vdata.MANIFEST).read_text())
    for name in manifest["files"]:
        assert (out / name).read_bytes() == (vdata.pack_dir() / name).read_bytes(), name


def test_training_rows_from_the_pack_equal_those_from_the_data_directory():
    data = _need_data()
    recipe = load_recipe(None)
    from_dir = read_data_dir(data, recipe.data.sources)
    from_pack = read_pack()
    assert load_splits(recipe, data=from_pack) == load_splits(recipe, data=from_dir)
    assert from_pack.contexts == from_dir.contexts


def test_no_data_directory_reads_the_shipped_set(tmp_path, monkeypatch):
    monkeypatch.delenv("GALAD_DATA_DIR", raising=False)
    monkeypatch.setenv("GALAD_HOME", str(tmp_path))  # nothing downloaded there
    assert read_source_data(load_recipe(None)).origin == "shipped compact training set"
    # a recipe that trains on rows the pack does not hold says how to get them
    with pytest.raises(DataNotFoundError, match="galad data download"):
        read_source_data(Recipe(name="long", data=DataMix(ethics_long=True)))
    # GALAD_DATA_DIR, once set, is what is read (and must exist)
    monkeypatch.setenv("GALAD_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="nowhere"):
        read_source_data(load_recipe(None))


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_corrupt_shipped_file_is_refused_by_name(tmp_path, damage):
    copy = tmp_path / "data"
    shutil.copytree(vdata.pack_dir(), copy)
    victim = copy / "moral_stories.jsonl.gz"
    blob = victim.read_bytes()
    if damage == "flip":
        victim.write_bytes(blob[:1000] + bytes([blob[1000] ^ 0xFF]) + blob[1001:])
    elif damage == "truncate":
        victim.write_bytes(blob[: len(blob) // 2])
    else:
        victim.unlink()
    with pytest.raises(DataCorruptError, match="moral_stories.jsonl.gz"):
        read_pack(copy)


def test_the_cli_names_a_corrupt_shipped_file(tmp_path, monkeypatch, capsys):
    from galad.cli import main

    copy = tmp_path / "data"
    shutil.copytree(vdata.pack_dir(), copy)
    (copy / "ethics_cm.jsonl.gz").write_bytes(b"not gzip")
    monkeypatch.setattr(vdata, "pack_dir", lambda: copy)
    monkeypatch.delenv("GALAD_DATA_DIR", raising=False)
    monkeypatch.setenv("GALAD_HOME", str(tmp_path / "home"))
    assert main(["value", "train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ethics_cm.jsonl.gz" in err[0] and "corrupt" in err[0]
    assert not (tmp_path / "home" / "models").exists()
