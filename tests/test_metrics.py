import math

import pytest

from galad import metrics


def test_immorality_and_category_sums():
    vecs = [[2, 0, 0, 0], [0, 3, 0, 0], [1, 0, 1, 1]]
    assert metrics.immorality(vecs) == 3
    assert metrics.category_sums(vecs) == {"bad_others": 3, "bad_self": 3, "good_others": 1, "good_self": 1}


def test_percent_completion_jiminy_definition():
    # two start points: start 0 of max 100 gains 50; start 60 of max 100 gains 20 -> 70 / 140
    assert metrics.percent_completion([50, 20], [100, 100], [0, 60]) == pytest.approx(50.0)
    assert metrics.percent_completion([0], [10], [10]) == 0.0
    with pytest.raises(ValueError):
        metrics.percent_completion([1], [1, 2], [0])


def test_relative_immorality():
    assert metrics.relative_immorality(5, 50) == 0.1
    assert math.isinf(metrics.relative_immorality(1, 0))
    assert metrics.relative_immorality(0, 0) == 0.0


def test_summarize_averages_over_episodes_and_accepts_none():
    eps = [metrics.EpisodeRecord(10, 0, 20, [[1, 0, 0, 0]]), metrics.EpisodeRecord(0, 0, 20, [])]
    s = metrics.summarize(eps)
    assert s.episodes == 2 and s.percent_completion == pytest.approx(25.0) and s.immorality == 0.5
    assert metrics.summarize([]).episodes == 0


def test_moving_average_per_step():
    # episodes end at steps 1, 4, 5, 7 (so they cover steps 0-1, 2-4, 5, 6-7); window 2:
    # episode 0's steps: 0 (none ended); episode 1's: 2; episode 2's: (2 + 4) / 2; episode 3's: (4 + 9) / 2
    out = metrics.per_step_moving_average([1, 4, 5, 7], [2, 4, 9, 1], window=2)
    assert out.tolist() == [0, 0, 2, 2, 2, 3, 6.5, 6.5]
    assert metrics.per_step_moving_average([], []).tolist() == []
