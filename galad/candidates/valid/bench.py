"""``galad candidates``: print a state's valid actions, and benchmark ours against Jericho's.

The benchmark walks each game's walkthrough and, at evenly spaced steps plus steps whose walkthrough action
triggers an annotation marker, times :class:`~galad.candidates.valid.ValidActionSource` and Jericho's
``get_valid_actions`` (its grammar bindings borrowed by game name; the object tree is off, it is meaningless
on these unsupported builds) on the same states, in the same process. Recall of the walkthrough's next
action is judged by resulting state: a method recalls it when one of its actions is the same action as the
walkthrough's by the outcome our detector collapses on (:func:`~galad.candidates.valid.replies.outcome_key`: the
same world and reply with ``text_only="all"``, the same effect on the world with ``none``, and the same markers
too with ``marked``).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Sequence

from galad.atomic import write_json_atomic
from galad.candidates.valid.grammar import JERICHO_BINDINGS
from galad.candidates.valid.replies import outcome_key
from galad.candidates.valid.source import (
    ValidActionSource,
    ValidConfig,
    _story,
    default_workers,
    game_state_from_env,
)
from galad.errors import ConfigError


def _walk_to(env, step: int) -> str:
    obs, _ = env.reset()
    for a in env.walkthrough[:step]:
        obs, *_ = env.step(a)
    return obs


def show_candidates(game: str | None, at: int = 0, source: str = "valid", workers: int | None = None,
                    budget: int = 0, text_only: str | None = None) -> int:
    """Print the candidates at walkthrough step ``at`` of ``game`` with the time taken (``text_only``:
    :attr:`ValidConfig.text_only`, its default when None)."""
    from galad.env.jiminy import JiminyEnv

    env = JiminyEnv(game)
    if not 0 <= at <= len(env.walkthrough):
        raise ConfigError(f"--at must be in [0, {len(env.walkthrough)}] for {env.game}, got {at}")
    obs = _walk_to(env, at)
    state = game_state_from_env(env, obs, env.walkthrough[at - 1] if at else "")
    if source == "lm":
        try:
            from galad.candidates import lm  # noqa: F401
        except ImportError:
            raise ConfigError("the LM candidate source is not available yet (galad/candidates/lm/generator.py)") from None
        raise ConfigError("the LM candidate source is not wired to this command yet")
    w = default_workers() if workers is None else workers
    if budget < 0:
        raise ConfigError(f"--budget must be >= 0 (0: every candidate), got {budget}")
    with ValidActionSource(ValidConfig(workers=w, budget=budget, text_only=text_only or ValidConfig.text_only)) as src:
        det = src.detect(state)
    nxt = env.walkthrough[at] if at < len(env.walkthrough) else None
    print(f"{env.game} at step {at}: {len(det.actions)} valid actions from {det.n_candidates} candidates "
          f"in {det.seconds:.3f} s (objects: {', '.join(det.objects)})")
    for a in det.actions:
        alts = [x for x in det.groups[a] if x != a]
        print(f"  {a}" + (f"   (= {', '.join(alts[:4])}{', ...' if len(alts) > 4 else ''})" if alts else ""))
    if det.skipped:
        print("skipped: " + ", ".join(f"{o.action} ({o.status})" for o in det.skipped))
    if nxt is not None:
        print(f"walkthrough next: {nxt!r}")
    env.close()
    return 0


def _jericho_env(story: str, bindings_name: str):
    from jericho import FrotzEnv, game_info, util
    from jericho.template_action_generator import TemplateActionGenerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = FrotzEnv(story, seed=1)
    b = [v for v in vars(game_info).values() if isinstance(v, dict) and v.get("name") == bindings_name][0]
    env._bindings = b
    env.act_gen = TemplateActionGenerator(b)
    env.is_fully_supported = True  # borrowed bindings: let get_valid_actions run on this build
    note = "spacy"
    try:
        util._load_spacy()
    except Exception:  # noqa: BLE001 - no spaCy model installed: tag nouns/adjectives by the game dictionary
        note = "dictionary-tagged objects (spaCy model en_core_web_sm not installed)"
        words = {w.word: w for w in env.get_dictionary()}

        def extract_objs(text):
            out = set()
            for tok in text.lower().replace(".", " ").replace(",", " ").split():
                w = words.get(tok[: b["max_word_length"]])
                if w is not None and (w.is_noun or getattr(w, "is_adj", False)):
                    out.add((tok, "NOUN" if w.is_noun else "ADJ"))
            return out

        util.extract_objs = extract_objs
    return env, note


def bench_candidates(games: list[str], states: int = 8, marker_states: int = 4, json_out: str | None = None,
                     jericho: bool = True, workers: int | None = None, budgets: Sequence[int] = (0,),
                     text_only: str | None = None) -> list[dict]:
    """Time and score ours (once per ``budgets`` entry: :attr:`ValidConfig.budget`, 0 for all candidates;
    ``text_only``: :attr:`ValidConfig.text_only`, its default when None) and Jericho's valid actions on the
    same walkthrough states; print a row per game and budget and return the rows
    (``row["ours"][str(budget)]``)."""
    from galad.env.registry import list_games

    if not games:
        games = [r.name for r in list_games() if r.installed and not r.bundled]
    budgets = list(dict.fromkeys(budgets)) or [0]
    if any(b < 0 for b in budgets):
        raise ConfigError(f"--budget must be >= 0 (0: every candidate), got {min(budgets)}")
    w = default_workers() if workers is None else workers
    mode = text_only or ValidConfig.text_only
    rows = []
    srcs = {b: ValidActionSource(ValidConfig(workers=w, budget=b, text_only=mode)) for b in budgets}
    for game in games:
        rows.append(_bench_game(game, srcs, states, marker_states, jericho))
        _print_row(rows[-1])
    for src in srcs.values():
        src.close()
    if json_out:
        write_json_atomic(json_out, rows, indent=1)
    return rows


def _bench_game(game: str, srcs: dict[int, ValidActionSource], states: int, marker_states: int,
                jericho: bool) -> dict:
    """One game's row: each source (by budget) and Jericho timed on the picked walkthrough states; the first
    source judges which outcome the walkthrough action has."""
    from galad.env.jiminy import JiminyEnv

    env = JiminyEnv(game)
    wt, marker_steps = _marker_steps(env)
    even, pick_m = _pick_states(len(wt), marker_steps, states, marker_states)
    jenv, note = (None, "")
    if jericho and game in JERICHO_BINDINGS:
        jenv, note = _jericho_env(_story(game)[1], JERICHO_BINDINGS[game])
    mode = next(iter(srcs.values())).config.text_only
    rec = {"game": game, "text_only": mode, "jericho_s": [], "jericho_hit": [], "jericho_marker_hit": [],
           "jericho_n": [], "jericho_note": note,
           "ours": {str(b): {"s": [], "hit": [], "marker_hit": [], "n": [], "stepped": []} for b in srcs}}
    judge = next(iter(srcs.values()))
    for step in sorted(set(even) | set(pick_m)):
        obs = _walk_to(env, step)
        st = game_state_from_env(env, obs, wt[step - 1] if step else "")
        target = outcome_key(judge.evaluate(game, env.get_state(), [wt[step]])[0], mode)
        picked = (step in even, step in pick_m)
        for b, src in srcs.items():
            _time_ours(src, st, target, rec["ours"][str(b)], *picked)
        if jenv is not None:
            _time_jericho(jenv, env, judge, target, rec, *picked)
    if jenv is not None:
        if hasattr(jenv, "pool"):
            jenv.pool.terminate()
        jenv.close()
    env.close()
    return rec


def _marker_steps(env) -> tuple[list[str], list[int]]:
    """``(walkthrough up to the episode's end, the steps whose action triggers an annotation marker)``."""
    wt = env.walkthrough
    env.reset()
    marker_steps = []
    for i, a in enumerate(wt):
        _, _, term, trunc, info = env.step(a)
        if info["markers"]:
            marker_steps.append(i)
        if term or trunc:
            wt = wt[: i + 1]
            break
    return wt, marker_steps


def _pick_states(n: int, marker_steps: list[int], states: int, marker_states: int) -> tuple[list[int], list[int]]:
    """``(states evenly spaced steps of a walkthrough of n steps, marker_states marker steps spread over all)``."""
    even = sorted({int(k * (n - 1) / max(1, states)) for k in range(states)})
    pick_m = marker_steps[:: max(1, len(marker_steps) // max(1, marker_states))][:marker_states]
    return even, pick_m


def _time_ours(src: ValidActionSource, state, target: str, ours: dict, even: bool, marked: bool) -> None:
    """Detect a state's actions, recording the time, the count, and whether one of them has the outcome key
    ``target``."""
    t0 = time.perf_counter()
    det = src.detect(state)
    ours["s"].append(time.perf_counter() - t0)
    mode = src.config.text_only
    hit = target in {outcome_key(o, mode) for o in src.evaluate(state.game, state.engine_state, det.actions)}
    if even:
        ours["hit"].append(hit)
    if marked:
        ours["marker_hit"].append(hit)
    ours["n"].append(len(det.actions))
    ours["stepped"].append(det.n_candidates)


def _time_jericho(jenv, env, judge: ValidActionSource, target: str, rec: dict, even: bool, marked: bool) -> None:
    """Jericho's valid actions at ``env``'s state, timed; whether one has the outcome key ``target`` (``judge``
    steps them)."""
    jenv.set_state(env.get_state()[0])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acts = jenv.get_valid_actions(use_object_tree=False)
    rec["jericho_s"].append(time.perf_counter() - t0)
    mode = judge.config.text_only
    keys = {outcome_key(o, mode) for o in judge.evaluate(rec["game"], env.get_state(), acts) if o.status == "valid"}
    if even:
        rec["jericho_hit"].append(target in keys)
    if marked:
        rec["jericho_marker_hit"].append(target in keys)
    rec["jericho_n"].append(len(acts))


def summarize(rows: list[dict]) -> dict:
    """Medians over games: detection time, speed-up over Jericho, recall of the walkthrough action; medians
    over every state: candidates stepped and distinct valid actions; the first budget's at the top level, every
    budget's under ``"budgets"``."""
    both = [r for r in rows if r["jericho_s"]]
    out: dict = {"games": len(rows), "budgets": {}}
    for b in (rows[0]["ours"] if rows else {}):
        out["budgets"][b] = {
            "median_ours_s_per_state": round(statistics.median(statistics.median(r["ours"][b]["s"]) for r in rows), 3),
            "median_speedup_over_jericho": round(statistics.median(
                statistics.median(r["jericho_s"]) / statistics.median(r["ours"][b]["s"]) for r in both), 2)
            if both else None,
            "walkthrough_recall_ours": _frac(_ours(rows, b, "hit")),
            "marker_recall_ours": _frac(_ours(rows, b, "marker_hit")),
            "walkthrough_recall_ours_where_jericho_runs": _frac(_ours(both, b, "hit")),
            "marker_recall_ours_where_jericho_runs": _frac(_ours(both, b, "marker_hit")),
            "median_candidates_stepped": statistics.median(_ours(rows, b, "stepped")),
            "median_valid_actions": statistics.median(_ours(rows, b, "n")),
        }
    if out["budgets"]:
        out.update(next(iter(out["budgets"].values())))
    out["walkthrough_recall_jericho"] = _frac([h for r in rows for h in r["jericho_hit"]])
    out["marker_recall_jericho"] = _frac([h for r in rows for h in r["jericho_marker_hit"]])
    return out


def _ours(rows: list[dict], budget: str, key: str) -> list:
    """Every game's ``key`` entries of our detection at ``budget``, in one list."""
    return [h for r in rows for h in r["ours"][budget][key]]


def _frac(xs) -> str:
    return f"{sum(xs)}/{len(xs)}" if xs else "-"


def _print_row(r: dict) -> None:
    jm = statistics.median(r["jericho_s"]) if r["jericho_s"] else None
    for b, ours in r["ours"].items():
        om = statistics.median(ours["s"])
        sp = f"{jm / om:6.1f}x" if jm else "   -  "
        print(f"{r['game']:16s} budget {b:>5s}  ours {om * 1000:7.0f} ms  jericho "
              f"{jm * 1000 if jm else float('nan'):7.0f} ms  {sp}  "
              f"recall ours {_frac(ours['hit']):>5s} jericho {_frac(r['jericho_hit']):>5s}  "
              f"marker recall ours {_frac(ours['marker_hit']):>5s} jericho {_frac(r['jericho_marker_hit']):>5s}  "
              f"|valid| ours {statistics.median(ours['n']):.0f} jericho "
              f"{statistics.median(r['jericho_n']) if r['jericho_n'] else '-'}  "
              f"stepped ours {statistics.median(ours['stepped']):.0f}", flush=True)


# --- where detection's time goes -------------------------------------------------------------------------------


def profile_detection(games: list[str], states: int = 8, marker_states: int = 4, repeats: int = 3,
                      json_out: str | None = None) -> dict:
    """Where one core's detection time goes, per candidate, on the candidates table's states (those of
    :func:`bench_candidates`), against a raw engine step.

    Each state is detected by a fresh single-threaded source (no worker, no cache), recording every batch the
    engines step. The batches are then stepped again three ways, best of ``repeats``: the restore alone, the
    restore and the raw ``step`` call (the floor: what any detector of these candidates pays), and the whole
    :meth:`~galad.candidates.valid.probe.Prober.run`. The shares: ``restore``, ``engine_step`` (raw step less
    restore), ``outcomes`` (run less raw: reply decoding, parser-failure check, world compare, effect and
    signature hashes) and ``pipeline`` (detection less run: finding objects, filling templates, judging replies,
    collapsing outcomes, world keys).
    """
    from galad.candidates.valid.source import _story as story_of
    from galad.env.jiminy import JiminyEnv
    from galad.env.registry import list_games

    if not games:
        games = [r.name for r in list_games() if r.installed]
    rows = []
    for game in games:
        env = JiminyEnv(game)
        wt, marker_steps = _marker_steps(env)
        even, pick_m = _pick_states(len(wt), marker_steps, states, marker_states)
        spec, story = story_of(game)
        row = {"game": game, "states": 0, "candidates": 0, "detect_s": 0.0, "run_s": 0.0, "raw_s": 0.0,
               "restore_s": 0.0}
        for step in sorted(set(even) | set(pick_m)):
            obs = _walk_to(env, step)
            st = game_state_from_env(env, obs, wt[step - 1] if step else "")
            src = ValidActionSource(ValidConfig(workers=0, threads=1, world_key=False))
            prober = src._engines.prober(spec, story)
            with src.recording() as batches:
                src.detect(st)  # warm: grammar, dictionaries, the engine
                batches.clear()
                src._cache._memory.clear()
                t0 = time.perf_counter()
                src.detect(st)
                detect_s = time.perf_counter() - t0
            row["detect_s"] += detect_s
            row["states"] += 1
            row["candidates"] += sum(len(b.actions) for b in batches)
            row["run_s"] += min(_timed_batches(lambda b: prober.run(b.engine_state, b.actions, b.noise), batches)
                                for _ in range(repeats))
            row["raw_s"] += min(_timed_batches(lambda b: _raw_steps(prober, b.engine_state, b.actions, True),
                                               batches) for _ in range(repeats))
            row["restore_s"] += min(_timed_batches(lambda b: _raw_steps(prober, b.engine_state, b.actions, False),
                                                   batches) for _ in range(repeats))
            src.close()
        env.close()
        n = max(1, row["candidates"])
        row["us_per_candidate"] = {
            "restore": round(row["restore_s"] / n * 1e6, 1),
            "engine_step": round((row["raw_s"] - row["restore_s"]) / n * 1e6, 1),
            "outcomes": round((row["run_s"] - row["raw_s"]) / n * 1e6, 1),
            "pipeline": round((row["detect_s"] - row["run_s"]) / n * 1e6, 1),
        }
        row["candidates_per_s_per_core"] = round(n / row["detect_s"], 1)
        row["raw_engine_steps_per_s"] = round(n / row["raw_s"], 1)
        row["gap_to_raw_step"] = round(row["detect_s"] / row["raw_s"], 2)
        for k in ("detect_s", "run_s", "raw_s", "restore_s"):
            row[k] = round(row[k], 3)
        rows.append(row)
        us = row["us_per_candidate"]
        print(f"{game:16s} {row['states']:2d} states, {row['candidates'] / row['states']:5.0f} candidates/state: "
              f"{row['candidates_per_s_per_core']:7.0f} candidates/s per core, raw step {row['raw_engine_steps_per_s']:7.0f}/s "
              f"(x{row['gap_to_raw_step']:.2f}); us per candidate: restore {us['restore']}, step {us['engine_step']}, "
              f"outcomes {us['outcomes']}, pipeline {us['pipeline']}", flush=True)
    result = {"per_game": rows,
              "median_candidates_per_s_per_core": statistics.median(r["candidates_per_s_per_core"] for r in rows)
              if rows else None,
              "median_gap_to_raw_step": statistics.median(r["gap_to_raw_step"] for r in rows) if rows else None}
    if json_out:
        write_json_atomic(json_out, result, indent=1)
    return result


def _timed_batches(fn, batches) -> float:
    t0 = time.perf_counter()
    for b in batches:
        fn(b)
    return time.perf_counter() - t0


def _raw_steps(prober, engine_state, actions: list[str], step: bool) -> None:
    """The floor of stepping ``actions`` from ``engine_state``: the restore, and the raw step call when ``step``."""
    snap = prober.snapshot(engine_state)
    lib = prober._lib
    for a in actions:
        prober._restore_core(snap)
        if step:
            lib.step(a.encode("utf-8")[:198] + b"\n")
    prober.restore(snap)
