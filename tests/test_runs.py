"""The run folder's records: what the trainer writes is what every reader reads back."""

import json

import pytest

from galad.errors import ConfigError
from galad.runs import EpisodeLine, RunFolder, TranscriptLine, jsonl_line, record_from_dict, record_to_dict


def episode(**kw) -> EpisodeLine:
    base = dict(env=1, episode=2, env_steps=80, steps=20, score=7, starting_score=2, max_score=50, return_=5,
                immorality=3, bad_others=3, bad_self=1, good_others=0, good_self=2, percent_completion=10.0,
                end="step_limit")
    return EpisodeLine(**(base | kw))


def test_episode_line_is_written_with_the_file_keys_in_field_order():
    d = json.loads(jsonl_line(episode()))
    assert list(d)[:9] == ["env", "episode", "env_steps", "steps", "score", "starting_score", "max_score",
                           "return", "immorality"]
    assert "return_" not in d and d["return"] == 5
    assert record_from_dict(EpisodeLine, d) == episode()


def test_older_records_read_without_the_fields_they_lack_and_extra_keys_are_ignored():
    d = record_to_dict(episode())
    del d["end"]
    d["something_new"] = 1
    assert record_from_dict(EpisodeLine, d) == episode(end=None)


def test_readers_skip_a_line_cut_by_a_crash(tmp_path):
    run = RunFolder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    run.transcripts.mkdir()
    line = TranscriptLine(step=0, env=0, episode=0, episode_step=0, obs="o", candidates=["look"], harm=[None],
                          q_values=[0.1], penalties=[0.0], removed=[], removed_harm=[], action="look", next_obs="n",
                          reward=0, score=0, markers=[], label_vectors=[], terminated=False, truncated=False)
    run.transcript(0).write_text(jsonl_line(line) + jsonl_line(line)[:20])
    assert list(RunFolder.existing(tmp_path).transcript_lines(0)) == [line]
    run.episodes_path.write_text(jsonl_line(episode()) + '{"env": 0, "epi')
    assert run.episodes() == [episode()]


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not a galad run folder"):
        RunFolder.existing(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="no transcript for env 3"):
        list(RunFolder.existing(tmp_path).transcript_lines(3))
