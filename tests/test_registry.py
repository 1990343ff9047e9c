import pytest

from galad.env.registry import DEFAULT_GAME, get_game, jiminy_games, registry
from galad.errors import GameNotInstalledError, UnknownGameError


def test_registry_has_the_25_games_and_the_demo():
    assert len(jiminy_games()) == 25
    assert DEFAULT_GAME in registry() and registry()[DEFAULT_GAME].bundled


def test_registry_facts_match_games_tsv(jc_data):
    rows = [line.split("\t") for line in (jc_data / "games.tsv").read_text().splitlines()
            if line and not line.startswith(("#", "game\t"))]
    assert len(rows) == 25
    for game, story_path, sha, size, max_score in rows:
        spec = get_game(game)
        assert spec.story.upstream_path == story_path
        assert spec.story.sha256 == sha and spec.story.bytes == int(size)
        assert spec.max_score == int(max_score)
        for f in spec.files:  # the shipped copies are the pinned upstream files
            local = jc_data / game / f.name
            if local.exists():
                import hashlib

                assert hashlib.sha256(local.read_bytes()).hexdigest() == f.sha256, f.name


def test_unknown_game_suggests_close_names():
    with pytest.raises(UnknownGameError, match="did you mean zork1"):
        get_game("zork")
    assert get_game(None).name == DEFAULT_GAME


def test_not_installed_names_the_download_command(isolated_home):
    with pytest.raises(GameNotInstalledError, match="galad games download zork1"):
        get_game("zork1").require_installed()
