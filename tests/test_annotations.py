import csv

import pytest

from galad.env import annotations as ann
from galad.env.registry import jiminy_games
from galad.errors import AnnotationError


def test_every_shipped_annotation_csv_parses(jc_data):
    total = 0
    for game in jiminy_games():
        path = jc_data / game / f"{game}_annotations.csv"
        table = ann.AnnotationTable.from_csv(path, game)
        with path.open(newline="") as f:
            rows = [r for i, r in enumerate(csv.reader(f)) if i > 0 and len(r) > 1 and r[1] != "" and r[6] != "N/A"]
        assert len(rows) > 0
        # every labelled row is in the table (ids may repeat across rows: the later row wins, as upstream)
        assert {"{}:{}".format(r[0].split(".")[0], r[1]) for r in rows} == set(table.rows)
        for a in table.rows.values():
            assert len(a.label_vector) == 4 and all(v >= 0 for v in a.label_vector)
        total += len(rows)
    assert total > 3500


def _table(rows):
    t = ann.AnnotationTable("t")
    for key, vec, kw in rows:
        t.rows[key] = ann.Annotation(key, vec, tuple(kw.split(", ")))
    return t


def test_parse_morality():
    assert ann.parse_morality("bad, others, 2") == (2, 0, 0, 0)
    assert ann.parse_morality("bad, self, 3\ngood, others, 1") == (0, 3, 1, 0)
    assert ann.parse_morality("ancillary") == (0, 0, 0, 0)
    with pytest.raises(AnnotationError):
        ann.parse_morality("terrible, others, 2")


def test_find_markers_orders_prso_markers_first_and_strips():
    text = "A [ID: verbs:10] b [ID: actions:5, PRSO: lamp, PRSI: nothing] c [ID: x:7(a)]"
    clean, markers = ann.find_markers(text)
    assert markers == [("actions:5", "lamp", "nothing"), ("verbs:10",), ("x:7(a)",)]
    assert clean == "A  b  c "


def test_keyword_rules_filter_markers_and_unknown_keywords_or_ids_drop_them():
    t = _table([
        ("a:1", (1, 0, 0, 0), ""),
        ("a:2", (2, 0, 0, 0), "only-first"),
        ("a:3", (3, 0, 0, 0), "ignore-first"),
        ("a:4", (0, 1, 0, 0), "taken"),
        ("a:5", (0, 0, 1, 0), "delete-next"),
        ("a:6", (0, 0, 0, 1), "first"),  # unknown keyword: dropped
        ("a:7", (1, 0, 0, 0), "a:1-visited"),
    ])
    st = ann.MarkerState()
    assert ann.apply_keywords([("a:2",)], t, st) == [("a:2",)]
    assert ann.apply_keywords([("a:2",)], t, st) == []
    assert ann.apply_keywords([("a:3",)], t, st) == []
    assert ann.apply_keywords([("a:3",)], t, st) == [("a:3",)]
    assert ann.apply_keywords([("a:4", "lamp", "x")], t, st) == [("a:4", "lamp", "x")]
    assert ann.apply_keywords([("a:4", "lamp", "x")], t, st) == []
    assert ann.apply_keywords([("a:4", "sword", "x")], t, st) == [("a:4", "sword", "x")]
    assert ann.apply_keywords([("a:5",), ("a:1",), ("a:1",)], t, st) == [("a:5",), ("a:1",)]
    assert ann.apply_keywords([("a:6",)], t, st) == []
    fresh = ann.MarkerState()
    assert ann.apply_keywords([("a:7",)], t, fresh) == []
    assert ann.apply_keywords([("a:1",), ("a:7",)], t, fresh) == [("a:1",), ("a:7",)]
    assert ann.apply_keywords([("zz:9",)], t, st) == []  # id not in the CSV: dropped


def test_only_first_counts_every_firing_in_the_step():
    t = _table([("a:2", (2, 0, 0, 0), "only-first")])
    # reference quirk: two firings in the first step make the count 2 before the rule is read
    assert ann.apply_keywords([("a:2",), ("a:2",)], t, ann.MarkerState()) == []


def test_two_marker_rule_keeps_one():
    assert ann.verbs_go_last([("verbs:1",), ("actions:2",)]) == [("actions:2",)]
    assert ann.verbs_go_last([("actions:2",), ("verbs:1",)]) == [("actions:2",)]
    assert ann.verbs_go_last([("actions:2",), ("actions:3",)]) == [("actions:2",)]
    assert ann.verbs_go_last([("verbs:1",), ("verbs:2",)]) == [("verbs:2",)]
    three = [("a:1",), ("b:2",), ("c:3",)]
    assert ann.verbs_go_last(three) == three


def test_custom_rewards_paid_once_and_stripped():
    seen: set[str] = set()
    text, r = ann.parse_rewards("You win.[RWD_ID: verbs:347, VAL: 5] Yay [RWD_ID: x:1, VAL:2]", seen)
    assert (text, r) == ("You win. Yay ", 7)
    assert ann.parse_rewards("[RWD_ID: verbs:347, VAL: 5]", seen) == ("", 0)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        ann.AnnotationTable.from_csv(tmp_path / "nope_annotations.csv")


def test_malformed_row_names_the_row(tmp_path):
    p = tmp_path / "g_annotations.csv"
    p.write_text("File,Line,N,D,R,C,Morality,Python Filters\nx.zil,3,t,d,,,\"bad, others\",\n")
    with pytest.raises(AnnotationError, match="row 2"):
        ann.AnnotationTable.from_csv(p)
