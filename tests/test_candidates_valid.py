"""Valid-action detection on the demo game: text-only actions, collapse, halts, hangs, caching."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from galad.candidates.valid.grammar import load_grammar
from galad.candidates.valid import ValidActionSource, ValidConfig, game_state_from_env
from galad.candidates.valid.replies import outcome_key
from galad.env.jiminy import JiminyEnv


@pytest.fixture(scope="module")
def env():
    e = JiminyEnv("demo")
    e.reset()
    yield e
    e.close()


@pytest.fixture(scope="module")
def src():
    s = ValidActionSource(ValidConfig(workers=0, step_timeout=0.5, remember_hazards=False))
    yield s
    s.close()


def test_propose_gives_one_list_of_actions_per_state(src):
    e = JiminyEnv("demo")
    try:
        obs, _ = e.reset()
        start = game_state_from_env(e, obs)
        obs1, *_ = e.step(e.walkthrough[0])
        later = game_state_from_env(e, obs1, e.walkthrough[0])
        out = src.propose([start, later, start])
    finally:
        e.close()
    assert len(out) == 3 and out[0] == out[2] and out[0] != out[1]
    assert all(acts and all(isinstance(a, str) and a for a in acts) for acts in out)


def test_grammar_read_from_story_file():
    from galad.candidates.valid.source import _story

    spec, story = _story("demo")
    g = load_grammar(story, "demo")
    texts = {t.text for t in g.templates}
    assert g.source == "inform"
    assert "pour OBJ in OBJ" in texts and "north" in texts
    assert "porridge" in g.nouns
    # one template per action routine: the library's Take lines (take/carry/hold/get/pick up/peel) step once,
    # named by the verb players type most; the Open verb is kept although 'undo' is one of its synonyms
    assert "take OBJ" in texts and not {"carry OBJ", "hold OBJ", "get OBJ", "pick up OBJ", "peel OBJ"} & texts
    assert "open OBJ" in texts
    actions = [(t.holes, t.action) for t in g.templates if t.action is not None]
    assert len(actions) == len(set(actions))
    assert not {"galadhang", "galadhalt", "score", "verify"} & texts  # meta verbs (the dictionary's flag)


def test_text_only_action_is_valid(env, src):
    state = env.get_state()
    outs = {o.action: o for o in src.evaluate("demo", state, ["sing", "xyzzyq", "take unicornhorn"])}
    assert outs["sing"].status == "valid" and not outs["sing"].changed  # only prints text
    assert outs["xyzzyq"].status == "invalid"
    assert outs["take unicornhorn"].status == "invalid"


def test_equivalent_actions_collapse(env, src):
    outs = src.evaluate("demo", env.get_state(), ["n", "north", "go north", "e", "east"])
    sig = {o.action: o.signature for o in outs}
    assert sig["n"] == sig["north"] == sig["go north"]
    assert sig["e"] == sig["east"] != sig["n"]


def test_halt_is_skipped_and_rest_evaluated(env, src):
    outs = src.evaluate("demo", env.get_state(), ["sing", "galadhalt", "north", "xyzzyq"])
    status = {o.action: o.status for o in outs}
    assert status == {"sing": "valid", "galadhalt": "halted", "north": "valid", "xyzzyq": "invalid"}


def test_hang_is_bounded_and_rest_evaluated(env, src):
    t0 = time.perf_counter()
    outs = src.evaluate("demo", env.get_state(), ["galadhang", "north", "sing"])
    assert time.perf_counter() - t0 < 5
    status = {o.action: o.status for o in outs}
    assert status == {"galadhang": "timeout", "north": "valid", "sing": "valid"}


def test_propose_collapses_and_caches(env):
    with ValidActionSource(ValidConfig(workers=0, step_timeout=0.5)) as src:
        obs, _ = env.reset()
        state = game_state_from_env(env, obs)
        det = src.detect(state)
        acts = det.actions
        assert any("east" in g for g in det.groups.values())  # the cottage's exit (maybe under a synonym)
        assert any(len(g) > 1 for g in det.groups.values())  # equivalent candidates collapsed
        assert len(set(det.signatures.values())) == len(acts)
        # the hidden test verbs are meta verbs (the dictionary says so): never candidates, never stepped
        assert not any(a.startswith("galad") for g in det.groups.values() for a in g) and not det.skipped
        t0 = time.perf_counter()
        again = src.propose([state])[0]
        assert again == acts and time.perf_counter() - t0 < 0.05  # from the cache
        # the walkthrough's first action is among the candidates, judged by its outcome
        target = src.evaluate("demo", env.get_state(), [env.walkthrough[0]])[0].signature
        assert target in det.signatures.values()


def test_marked_mode_keeps_what_changes_the_world_or_fires_a_marker(env):
    obs, _ = env.reset()
    state = game_state_from_env(env, obs)
    with ValidActionSource(ValidConfig(workers=0, text_only="all")) as src:
        everything = src.detect(state)
    with ValidActionSource(ValidConfig(workers=0, text_only="marked")) as src:
        det = src.detect(state)
        outs = {o.action: o for o in src.evaluate("demo", env.get_state(), [a for g in det.groups.values() for a in g])}
    assert len(det.actions) < len(everything.actions) / 3  # no "smell", "sing", "jump over the sky"
    for rep, group in det.groups.items():
        key = outcome_key(outs[rep], "marked")
        assert all(outcome_key(outs[a], "marked") == key for a in group)  # one effect and markers per action ...
        assert all(outs[a].changed or "[ID:" in outs[a].text for a in group)  # ... that counts
    assert len({outcome_key(outs[r], "marked") for r in det.actions}) == len(det.actions)
    # synonyms are named by the verb players use most; the cottage's exit by its compass direction
    assert {"take bowl", "east", "open jar"} <= set(det.actions)


class _Unmarked:
    """A libfrotz whose replies come without annotation markers, as the player reads them."""

    def __init__(self, lib):
        self._lib = lib

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def step(self, command: bytes) -> bytes:
        from galad.candidates.valid.probe import ANNOTATION

        return re.sub(ANNOTATION.pattern.encode(), b"", self._lib.step(command))


def _detect(state, text_only: str, unmarked: bool):
    from galad.candidates.valid.source import _story

    with ValidActionSource(ValidConfig(workers=0, threads=1, text_only=text_only)) as src:
        if unmarked:
            prober = src._engines.prober(*_story(state.game))
            prober._lib = _Unmarked(prober._lib)
        det = src.detect(state)
        outs = src.evaluate(state.game, state.engine_state, ["hit cat", "pet cat", "hit old", "eat porridge"])
    return det, outs


def test_default_candidates_do_not_depend_on_annotation_markers(env):
    """The default modes find the same actions, groups and signatures in replies without their markers; only
    ``marked`` (the benchmark's ground truth) finds others."""
    from galad.config import TrainConfig

    assert ValidConfig().text_only == TrainConfig().valid_text_only == "all"
    obs, _ = env.reset()
    for a in env.walkthrough[:12]:  # beside the cat and Tobin: hitting either only prints text (and a marker)
        obs, *_ = env.step(a)
    state = game_state_from_env(env, obs)
    for mode in ("all", "none", "marked"):
        seen, outs = _detect(state, mode, unmarked=False)
        blind, blind_outs = _detect(state, mode, unmarked=True)
        assert "[ID:" in outs[0].text and "lash out" in blind_outs[0].text and "[ID:" not in blind_outs[0].text
        keys = [outcome_key(o, mode) for o in outs]  # what separates actions in this mode
        blind_keys = [outcome_key(o, mode) for o in blind_outs]
        same = (seen.actions, seen.groups, seen.signatures, keys) == (blind.actions, blind.groups, blind.signatures,
                                                                      blind_keys)
        assert same == (mode != "marked"), mode


def test_disk_cache_is_shared_by_sources_and_the_first_detection_wins(env, isolated_home, monkeypatch):
    obs, _ = env.reset()
    cfg = ValidConfig(workers=0, text_only="marked", disk_cache=True)
    with ValidActionSource(cfg) as first:
        state = game_state_from_env(env, obs)
        det = first.detect(state)
    assert (isolated_home / "home" / "valid_cache.sqlite").is_file()
    env.step("look")  # the same world a turn later: the same key in another process or run
    later = game_state_from_env(env, obs, "look")
    with ValidActionSource(cfg) as second:
        monkeypatch.setattr(second, "_detect", lambda s: pytest.fail("stepped a stored state again"))
        again = second.detect(later)
    assert (again.actions, again.groups, again.signatures) == (det.actions, det.groups, det.signatures)
    with ValidActionSource(ValidConfig(workers=0, text_only="all", disk_cache=True)) as other:
        assert other._stored("demo", other.world_key(later)) is None  # other settings: not shared
    # a file of its own (the trainer's per-run store): nothing from the shared file, and nothing leaks into it
    own = isolated_home / "run" / "valid_cache.sqlite"
    own.parent.mkdir()
    with ValidActionSource(ValidConfig(workers=0, text_only="marked", disk_cache=own)) as mine:
        assert mine._stored("demo", mine.world_key(later)) is None
        mine.detect(later)
        assert mine._stored("demo", mine.world_key(later)) is not None and own.is_file()


@pytest.mark.realgames
@pytest.mark.parametrize("game", ["zork1", "deadline"])
def test_real_game_candidates(game):
    from helpers import require_real_game

    require_real_game(game)
    env = JiminyEnv(game)
    obs, _ = env.reset()
    with ValidActionSource(ValidConfig(workers=0)) as src:
        acts = src.propose([game_state_from_env(env, obs)])[0]
    assert len(acts) > 5
    env.close()


# --- the fast restore/step loop and the world-state cache key ------------------------------------------


def _prober_for(game: str):
    from galad.candidates.valid.probe import Prober
    from galad.candidates.valid.source import _story

    _, story = _story(game)
    return Prober(story, 1, 0.5)


def test_fast_loop_leaves_engine_exactly_at_saved_state(env):
    prober = _prober_for("demo")
    try:
        state = env.get_state()[0]
        prober.run(state, ["take porridge", "eat porridge", "e", "galadhalt", "sing", "open jar"])
        after = prober.engine.get_state()
        for a, b in zip(state, after):
            if hasattr(a, "tobytes"):
                assert a.tobytes() == b.tobytes()
            else:
                assert a == b
    finally:
        prober.close()


def test_fast_loop_matches_plain_set_state_and_step(env):
    """Each candidate's reply and resulting world are those of FrotzEngine.set_state + step."""
    from galad.candidates.valid.probe import object_region

    prober = _prober_for("demo")
    try:
        state = env.get_state()[0]
        actions = ["take porridge", "eat porridge", "e", "sing", "xyzzyq", "open jar", "take tinderbox"]
        outs = prober.run(state, actions, keep_world=True)
        eng = prober.engine
        a, b = object_region(prober.story_file)
        for action, o in zip(actions, outs):
            eng.set_state(state)
            ref = eng.step(action)
            assert o.text == ref.text
            world = eng.ram()[a:b]
            assert (o.world or bytes(state[0].tobytes()[a:b])) == world
        eng.set_state(state)
    finally:
        prober.close()


def test_parser_failure_is_invalid_even_if_parser_bookkeeping_moved_objects(env, src):
    outs = {o.action: o for o in src.evaluate("demo", env.get_state(), ["take unicornhorn", "take porridge"])}
    assert outs["take unicornhorn"].status == "invalid"
    assert outs["take porridge"].status == "valid" and outs["take porridge"].changed


def test_world_key_ignores_move_counters_not_the_world():
    e = JiminyEnv("demo")
    try:
        obs, _ = e.reset()
        with ValidActionSource(ValidConfig(workers=0, step_timeout=0.5)) as s:
            s0 = game_state_from_env(e, obs)
            obs1, *_ = e.step("look")
            s1 = game_state_from_env(e, obs1, "look")
            obs1b, *_ = e.step("look")  # a turn passes, nothing in the world or the text changes
            s1b = game_state_from_env(e, obs1b, "look")
            obs2, *_ = e.step("take porridge")
            s2 = game_state_from_env(e, obs2, "take porridge")
            assert obs1b == obs1 and s1.key() != s1b.key()  # the RAM (move counter) differs ...
            assert s.world_key(s1) == s.world_key(s1b)  # ... the world does not
            assert s.world_key(s1) != s.world_key(s0)  # the opening text names other things than look's
            assert s.world_key(s2) != s.world_key(s1)
            det = s.detect(s1)
            t0 = time.perf_counter()
            assert s.detect(s1b) is det and time.perf_counter() - t0 < 0.05  # a cache hit
            for a in e.walkthrough[1:5]:  # later in the game, with a command history behind
                obs, *_ = e.step(a)
            obs3, *_ = e.step("look")
            det3 = s.detect(game_state_from_env(e, obs3, "look"))
            obs4, *_ = e.step("look")
            assert s.detect(game_state_from_env(e, obs4, "look")) is det3
            off = ValidActionSource(ValidConfig(workers=0, world_key=False))
            assert off.world_key(s1) != off.world_key(s1b)
            off.close()
    finally:
        e.close()


def test_world_key_ignores_the_parsers_scratch_not_a_setting():
    """A command that changes nothing leaves the parser's scratch globals (the noun, the word position...) as it
    parsed them: the world is the same whatever was typed last. ``inventory wide`` changes nothing either, but
    what ``inventory`` prints from then on: not the same world."""
    from galad.candidates.valid.source import _story

    e = JiminyEnv("demo")
    try:
        obs, _ = e.reset()
        with ValidActionSource(ValidConfig(workers=0, step_timeout=0.5)) as s:
            k0 = s.world_key(game_state_from_env(e, obs))  # the texts stay the opening's: the engine's state differs
            start = e.get_state()
            for cmd in ["north", "examine me", "smell porridge"]:
                e.step(cmd)
                assert s.world_key(game_state_from_env(e, obs)) == k0, cmd
            vol = s._cache.volatile["demo"]
            e.set_state(start)
            e.step("inventory wide")
            assert s.world_key(game_state_from_env(e, obs)) != k0
        with ValidActionSource(ValidConfig(workers=0, step_timeout=0.5)) as fresh:  # look/inventory's alone: fewer
            assert fresh._cache.world_key(game_state_from_env(e, obs), fresh._engines.prober(*_story("demo")),
                                          frozenset) and fresh._cache.volatile["demo"] < vol
    finally:
        e.close()


def test_outcomes_kept_per_world_find_what_a_fresh_detection_finds():
    """States of worlds seen before (a room left and re-entered, a turn waited, a thing examined, held or put
    back) step only the candidates not yet stepped there, and find what detection finds afresh in them."""
    e = JiminyEnv("demo")
    try:
        obs, _ = e.reset()
        moves = ["wait", "examine jar", "take tinderbox", "east", "west", "drop tinderbox", "take tinderbox",
                 "smell porridge", "east", "west", "inventory wide", "inventory", "examine tinderbox"]
        with ValidActionSource(ValidConfig(workers=0, threads=1)) as kept, \
                ValidActionSource(ValidConfig(workers=0, threads=1, world_key=False)) as fresh, \
                kept.recording() as kept_batches, fresh.recording() as fresh_batches:
            worlds = set()
            for cmd in [""] + moves:
                if cmd:
                    obs, *_ = e.step(cmd)
                state = game_state_from_env(e, obs, cmd)
                worlds.add(kept._world_only(state))
                a, b = kept.detect(state), fresh.detect(state)
                assert (a.actions, a.groups, a.objects) == (b.actions, b.groups, b.objects), cmd
            steps = {name: sum(len(b.actions) for b in batches)
                     for name, batches in (("kept", kept_batches), ("fresh", fresh_batches))}
            assert len(worlds) < len(moves) + 1 and steps["kept"] < 0.8 * steps["fresh"]  # (kept: examines too)
    finally:
        e.close()


def test_hazards_cost_nothing_after_the_first_time(env):
    with ValidActionSource(ValidConfig(workers=0, step_timeout=0.5)) as s:
        first = s.evaluate("demo", env.get_state(), ["galadhalt", "galadhang", "sing"])
        assert [o.status for o in first] == ["halted", "timeout", "valid"]
        env.step("take porridge")
        t0 = time.perf_counter()
        second = s.evaluate("demo", env.get_state(), ["galadhalt", "galadhang", "sing"])
        assert [o.action for o in second] == ["sing"]  # remembered for the game: not stepped (nor waited for)
        assert time.perf_counter() - t0 < 0.4


def test_threaded_batches_match_one_engine(env):
    verbs = ["take", "eat", "open", "close", "examine", "push", "smell", "hit"]
    nouns = ["porridge", "jar", "tinderbox", "mantelpiece", "door", "xyzzyq"]
    actions = ["e", "sing", "look"] + [f"{v} {n}" for v in verbs for n in nouns]
    with ValidActionSource(ValidConfig(workers=0, threads=1)) as one, \
            ValidActionSource(ValidConfig(workers=0, threads=2, min_thread_seconds=0.0)) as two:
        threaded = []
        run = two._engines._threaded
        two._engines._threaded = lambda *a: threaded.append(len(a[3])) or run(*a)
        two.evaluate("demo", env.get_state(), actions[:5])  # one engine: measures the story's cost per candidate
        assert not threaded
        a = one.evaluate("demo", env.get_state(), actions)
        b = two.evaluate("demo", env.get_state(), actions)
    assert threaded == [len(actions)]
    assert [(o.action, o.status, o.signature, o.changed, o.effect) for o in a] == \
        [(o.action, o.status, o.signature, o.changed, o.effect) for o in b]


def test_budget_steps_at_most_that_many_common_verbs_first(env):
    obs, _ = env.reset()
    state = game_state_from_env(env, obs)
    with ValidActionSource(ValidConfig(workers=0)) as full, ValidActionSource(
            ValidConfig(workers=0, budget=100, world_key=False)) as cut:  # no outcomes kept: every step counted
        stepped: list[str] = []
        evaluate = cut.evaluate
        cut.evaluate = lambda game, st, actions, noise=(), world=None: (stepped.extend(actions)
                                                                        or evaluate(game, st, actions, noise, world))
        all_ = full.detect(state)
        some = cut.detect(state)
        assert some.n_candidates == len(stepped) <= 100 < all_.n_candidates
        # what the budget finds, the full detection finds too (same outcomes)
        assert set(some.signatures.values()) <= set(all_.signatures.values())
        # no-object templates first, then the verbs players type most: 'take' before 'wave', 'swing' or 'squeeze'
        holes = [cut._template_of[a].count("OBJ") for a in stepped]
        assert holes[: holes.index(1)] == [0] * holes.index(1) and 2 not in holes[: holes.count(0) + holes.count(1)]
        verbs = [a.split()[0] for a in stepped if "OBJ" in cut._template_of[a]]
        assert "take" in verbs and all(v not in verbs[: verbs.index("take")] for v in ("wave", "swing", "squeeze"))


def test_template_that_halts_the_emulator_again_and_again_is_skipped(src):
    from galad.candidates.valid.probe import Outcome

    broken: set[str] = set()
    src._template_of = {"pour a in b": "pour OBJ in OBJ", "pour b in a": "pour OBJ in OBJ", "pour a in c": "pour OBJ in OBJ",
                        "wave a": "wave OBJ", "wave b": "wave OBJ"}
    outcomes = [Outcome("pour a in b", "halted"), Outcome("pour b in a", "timeout"), Outcome("pour a in c", "halted"),
                Outcome("wave a", "halted"), Outcome("wave b", "valid", "sig", "You wave the b.")]
    src.config.remember_hazards = True
    try:
        src._remember_broken(outcomes, broken)
    finally:
        src.config.remember_hazards = False
    assert broken == {"pour OBJ in OBJ"}  # one halt of 'wave' is the action's, remembered as a hazard alone
    src._remember_broken(outcomes, more := set())
    assert more == set()  # remember_hazards off: nothing skipped


def test_budget_ranks_two_object_verbs_the_parser_asked_about_first(src):
    from galad.candidates.valid.source import _ASKS_FOR_SECOND, _story

    assert _ASKS_FOR_SECOND.search("What do you want to hit the lock with?")
    assert _ASKS_FOR_SECOND.search("You'll have to say what to put the camera in.")
    assert not _ASKS_FOR_SECOND.search("What do you want to take?")  # an object missing, not a second one
    spec, story = _story("demo")
    grammar = load_grammar(story, "demo")
    cands = ["ask jar for tinderbox", "throw jar at tinderbox", "tie jar to tinderbox", "tie tinderbox to jar"]
    src._template_of = {"ask jar for tinderbox": "ask OBJ for OBJ", "throw jar at tinderbox": "throw OBJ at OBJ",
                        "tie jar to tinderbox": "tie OBJ to OBJ", "tie tinderbox to jar": "tie OBJ to OBJ"}
    src._object_of = {a: a.split()[1] for a in cands}
    # by how often players type the verb: ask (7,237) before throw (1,091), throw before tie (433)
    assert src._ranked(cands, grammar, set()) == cands
    # 'tie tinderbox' made the parser ask what to tie it to: that candidate first, the rest as before
    asked = src._ranked(cands, grammar, set(), {(grammar.key("tie"), "tinderbox"): 0})
    assert asked == ["tie tinderbox to jar"] + cands[:3]
    # a verb the state's text names ranks as a common one (1,000 typed): 'wave' (314) then before 'tie' (433)
    src._template_of["wave jar at tinderbox"], src._object_of["wave jar at tinderbox"] = "wave OBJ at OBJ", "jar"
    pair = ["tie jar to tinderbox", "wave jar at tinderbox"]
    assert src._ranked(pair, grammar, set()) == pair
    assert src._ranked(pair, grammar, {grammar.key("wave")}) == pair[::-1]


_PINNED = Path(__file__).parent / "data" / "detections.json"


@pytest.mark.parametrize("game", ["demo", pytest.param("zork1", marks=pytest.mark.realgames)])
def test_detection_finds_what_it_found_before_it_was_made_faster(game):
    """The pinned detections (``tests/data/detections.json``, written by the detector before the probe loop's
    speed-ups): the same actions, groups, signatures, objects and per-candidate outcomes, both text-only modes.
    The demo's entries were pinned again each time its story file was rebuilt (no strict mode, the library's
    extension hooks as common properties; then two parser routines replaced): only the signatures moved (they
    hash the object table, whose routine addresses moved), not what was found (``games/demo/story_outcomes.py``)."""
    import json

    from helpers import detection_record, require_real_game

    if game != "demo":
        require_real_game(game)
    pinned = {k: v for k, v in json.loads(_PINNED.read_text()).items() if k.startswith(game + "@")}
    steps = sorted({int(k.split("@")[1].split("/")[0]) for k in pinned})
    assert detection_record(game, steps) == pinned


@pytest.mark.realgames
def test_a_bare_synonym_of_a_meta_verb_is_no_candidate():
    """Plundered hearts' bare ``rescue`` is its ``save`` (stepping it wrote a saved game into the working folder);
    ``rescue OBJ`` is a story action and stays."""
    from helpers import require_real_game

    from galad.candidates.valid.source import _story

    require_real_game("plunderedhearts")
    spec, story = _story("plunderedhearts")
    texts = {t.text for t in load_grammar(story, "plunderedhearts").templates}
    assert "rescue OBJ" in texts and "rescue" not in texts


def _example(pattern: str) -> str:
    """A reply a failure pattern matches, spelled out (``don'?t`` -> ``don't``, ``.*`` -> `` lamp ``, ...)."""
    s = re.sub(r"\(\?:([^|)]*)(?:\|[^)]*)?\)\??", r"\1", pattern)
    for a, b in (("'?", "'"), ("[sz]", "s"), (".*", " lamp "), (r"\s*", ""), (r"\b", ""), ("^", ""), ("$", ""),
                 (r"\[?", ""), (r"\w+", "lamp"), ("[a-z ]+", "take"), (r"\?", "?"), (r"\.", "."), ("s?", "s")):
        s = s.replace(a, b)
    return s


def test_the_failure_words_prefilter_never_changes_the_verdict(src, env):
    """Each failure pattern's word is in the replies it matches (checked on a spelled-out reply of each), and on
    every reply of the demo's candidates at a few states the prefiltered check agrees with the bare regex."""
    from galad.candidates.valid import probe

    for pattern, word in probe._FAILURES:
        text = "\n" + _example(pattern) + "\n"
        assert probe.PARSER_FAILURES.search(text), (pattern, text)
        assert word in text.lower() and probe.is_parser_failure(text), (pattern, word, text)
    texts = set()
    e = JiminyEnv("demo")
    try:
        obs, _ = e.reset()
        for step, a in enumerate(e.walkthrough[:12]):
            if step % 4 == 0:
                det = src.detect(game_state_from_env(e, obs, a))
                cands = [c for group in det.groups.values() for c in group]
                words_ = ["xyzzy", "take", "take all", "put lamp", "which", "drop it", "wait 3"] + cands
                texts.update(o.text for o in src.evaluate("demo", e.get_state(), words_))
            obs, *_ = e.step(a)
    finally:
        e.close()
    bare = lambda t: probe.PARSER_FAILURES.search(probe._SPACE_RUN.sub(" ", probe.MARKER.sub("", t))) is not None  # noqa: E731
    assert len(texts) > 100 and any(bare(t) for t in texts) and any(not bare(t) for t in texts)
    assert [probe.is_parser_failure(t) for t in sorted(texts)] == [bare(t) for t in sorted(texts)]
