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


def test_atomic_files_and_folders_get_the_mode_a_plain_write_would(tmp_path):
    """The temporaries are private (0600 / 0700) until renamed into place; what lands has the umask's mode, so a
    run's config.json or a trained model's folder is as readable as any file the user writes."""
    import os
    import stat

    from galad.atomic import atomic_dir, write_json_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    write_json_atomic(tmp_path / "summary.json", {"a": 1})
    with atomic_dir(tmp_path / "model") as d:
        (d / "weights.bin").write_bytes(b"0")
    assert stat.S_IMODE((tmp_path / "summary.json").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o777 & ~mask
