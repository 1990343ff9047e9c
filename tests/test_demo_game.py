"""The demo game's own checks: the committed story file is a current build, markers match the CSV."""

import shutil
import subprocess
import sys

import pytest

from galad import paths

DEMO = paths.bundled_games_dir() / "demo"


@pytest.mark.skipif(shutil.which("inform6") is None, reason="Inform 6 compiler not installed")
def test_committed_story_file_is_current(tmp_path):
    out = tmp_path / "demo.z5"
    subprocess.run(["bash", str(DEMO / "build.sh"), str(out)], check=True, capture_output=True)
    assert out.read_bytes() == (DEMO / "demo.z5").read_bytes(), "demo.z5 is stale: run games/demo/build.sh"


def test_markers_and_annotation_rows_agree():
    r = subprocess.run([sys.executable, str(DEMO / "check_markers.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_demo_covers_every_category_and_tier():
    from galad.env.annotations import AnnotationTable

    table = AnnotationTable.from_csv(DEMO / "demo_annotations.csv", "demo")
    assert len(table) >= 10
    cats = {i for a in table.rows.values() for i, v in enumerate(a.label_vector) if v}
    tiers = {v for a in table.rows.values() for v in a.label_vector if v}
    assert cats == {0, 1, 2, 3} and {1, 2, 3} <= tiers
    kws = {k for a in table.rows.values() for k in a.keywords}
    assert {"only-first", "ignore-first", "taken"} <= kws
