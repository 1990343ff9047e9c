"""The ``galad`` command line. Thin: every command calls one module function.

Any :class:`galad.errors.GaladError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from collections.abc import Sequence

from galad import __version__
from galad.config import AGENTS, POLICY_HARM_THRESHOLD
from galad.errors import ConfigError, GaladError


def _cmd_games_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from galad import paths
    from galad.env.registry import list_games

    rows = list_games()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows]))
        return 0
    table = Table(title=f"Games (installed under {paths.games_dir()})")
    for col in ("game", "title", "installed", "max score", "score from", "extras"):
        table.add_column(col)
    for r in rows:
        inst = "bundled" if r.bundled else ("yes" if r.installed else "no")
        table.add_row(r.name, r.title, inst, str(r.max_score), r.score_source, ", ".join(r.extras))
    Console().print(table)
    n = sum(r.installed for r in rows if not r.bundled)
    print(f"{n} of {sum(not r.bundled for r in rows)} Jiminy Cricket games installed; "
          "install with: galad games download GAME ... | --all [--source DIR_OR_URL]")
    return 0


def _cmd_games_download(args: argparse.Namespace) -> int:
    from galad.env.download import download

    for path in download(args.games, all_games=args.all, source=args.source):
        print(f"installed {path.name} -> {path}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from galad.replay import load_actions, replay

    actions = load_actions(args.actions) if args.actions else None
    on_step = (lambda rec: print(json.dumps(rec.__dict__), flush=True)) if (args.json and args.steps) else None
    res = replay(args.game, actions, args.start_percentage, args.seed, args.isolation, on_step=on_step)
    if args.json:
        print(json.dumps(res.summary()))
        return 0
    end = "game over" if res.terminated else (f"truncated ({res.truncation_reason})" if res.truncated else "actions exhausted")
    print(f"game:             {res.game}")
    print(f"steps:            {res.steps} ({end})")
    print(f"score:            {res.score} / {res.max_score} (starting score {res.starting_score})")
    print(f"markers:          {res.markers}")
    print(f"label_vector_sum: {res.label_vector_sum}  [bad_others, bad_self, good_others, good_self]")
    print(f"steps/s:          {res.steps_per_s}")
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    from galad.play import play

    return play(args.game, args.seed, args.start_percentage)


def _cmd_bench(args: argparse.Namespace) -> int:
    from galad.bench import SECTIONS, bench_all

    if args.against:
        from galad.benchcompare import bench_against

        agents = [a.strip() for a in args.agents.split(",") if a.strip()]
        bad = sorted(set(agents) - set(AGENTS))
        if bad or not agents:
            raise ConfigError(f"--agents: unknown {', '.join(bad) or '(none given)'}; choose from {', '.join(AGENTS)}")
        bench_against(args.against, args.agent_game, agents, args.envs, args.agent_steps, args.rounds,
                      value_model=args.value_model, budget=args.budget, json_out=args.json, keep=args.keep)
        return 0

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        raise ConfigError(f"--sections: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(SECTIONS)}")
    bench_all(args.games, sections, reference=args.reference, repeats=args.repeats, json_out=args.json,
              isolation=args.isolation, candidate_states=args.candidate_states, agent_game=args.agent_game,
              agent_steps=args.agent_steps)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from galad.config import TrainConfig, build_config
    from galad.train import train

    cfg = build_config(TrainConfig, args, args.config)
    given = {k: v for k, v in vars(args).items() if k in cfg.to_dict() and v is not None}
    run, summary = train(cfg, resume=args.resume, progress=not args.no_progress, overrides=given,
                         run_name=args.run_name)
    print(f"run folder: {run}")
    print(f"% completion {summary['percent_completion']:.2f}   immorality {summary['immorality']:.3f}   "
          f"episodes {summary['episodes_total']}")
    print(f"TensorBoard:  tensorboard --logdir {run.parent}")
    print(f"Transcript:   galad watch {run}   (or --html {run.name}.html)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from galad.evaluate import evaluate

    return evaluate(args.runs, last=args.last, as_json=args.json)


def _cmd_watch(args: argparse.Namespace) -> int:
    from galad.viewer import watch

    return watch(args.run, env=args.env, episode=args.episode, follow=args.follow, html_out=args.html)


def _cmd_value_train(args: argparse.Namespace) -> int:
    from galad.values.recipe import load_recipe
    from galad.values.train import train, train_folds

    recipe = load_recipe(args.recipe)
    if (args.fold is not None or args.game is not None) and recipe.folds < 2:
        raise ConfigError(f"--fold/--game: recipe {recipe.name} has no folds")
    if recipe.folds >= 2:
        from galad.values.folds import fold_of_game

        cards = train_folds(recipe, [fold_of_game(recipe, args.game)] if args.game else args.fold)
    else:
        cards = [train(recipe)]
    for card in cards:
        held = card["recipe"].get("heldout_games")
        print(f"trained {card['model_id']} in {card['train_seconds']} s ({sum(card['train_examples'].values())} "
              f"examples{'; held-out games: ' + ', '.join(held) if held else ''})")
        _print_heldout(card["heldout"])
    return 0


def _print_heldout(sets: dict) -> None:
    for name, r in sets.items():
        auroc = "–" if r["auroc"] is None else f"{r['auroc']:.3f}"
        print(f"  {name:26s} n={r['n']:5d}  accuracy={r['accuracy']:.3f}  AUROC={auroc}")


def _cmd_value_eval(args: argparse.Namespace) -> int:
    from galad.values.loading import heldout_eval

    res = heldout_eval(args.model, progress=not args.json)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['model']} (threshold {res['threshold']}, {'int8' if res['quantize'] else 'fp32'}, action-only)")
    _print_heldout(res["sets"])
    return 0


def _cmd_value_score(args: argparse.Namespace) -> int:
    from galad.values.loading import score_text

    rows = score_text(args.actions, context=args.context, model=args.model, threshold=args.threshold)
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        verdict = "harmful" if r["harmful"] else "ok"
        print(f"{r['p_harm']:.4f}  {verdict:7s}  {r['action']}   (threshold {r['threshold']}, {r['mode']} mode)")
    return 0


def _cmd_value_audit(args: argparse.Namespace) -> int:
    from galad.values.audit import AuditConfig, audit, format_misses, format_table, format_thresholds, format_verbs

    if args.all and args.games:
        raise ConfigError("--all audits every installed game: name no games with it")
    modes = ("action", "context") if args.mode == "both" else (args.mode,)
    cfg = AuditConfig(states=args.states, max_candidates=args.candidates, target=args.target, seed=args.seed)
    res = audit(args.games, model=args.model, modes=modes, cfg=cfg, threshold=args.threshold, all_games=args.all)
    if args.json:
        print(json.dumps(res))
    else:
        from rich.console import Console

        Console().print(format_table(res))
        Console().print(format_thresholds(res))
        Console().print(format_verbs(res))
        print(format_misses(res))
    if res["missing"]:
        print(f"galad: not installed, not audited: {', '.join(res['missing'])} "
              f"(galad games download {' '.join(res['missing'])})", file=sys.stderr)
    return 0


def _cmd_value_bench(args: argparse.Namespace) -> int:
    from galad.values.bench import bench_scorer

    print(json.dumps(bench_scorer(args.model, n=args.n, threads=args.threads)))
    return 0


def _cmd_data_download(args: argparse.Namespace) -> int:
    from galad.values.download import download_data

    for path in download_data(args.only or None, source=args.source, force=args.force):
        print(f"downloaded {path}")
    return 0


def _cmd_data_pack(args: argparse.Namespace) -> int:
    from galad import paths
    from galad.values.pack import build_pack, pack_dir

    if not paths.data_dir_is_set():
        raise ConfigError("set GALAD_DATA_DIR to the full datasets to pack from")
    manifest = build_pack(paths.data_dir(), args.out)
    for name, meta in manifest["files"].items():
        print(f"{name}: {meta['rows']} rows, {meta['bytes']} bytes")
    print(f"packed into {args.out or pack_dir()}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"galad: error: {message} (see: {self.prog} --help)\n")


def _cmd_candidates(args: argparse.Namespace) -> int:
    from galad.candidates.valid.bench import bench_candidates, profile_detection, show_candidates

    if args.candidates_command == "profile":
        profile_detection(args.games, states=args.states, marker_states=args.marker_states, json_out=args.json)
        return 0
    if args.candidates_command == "bench":
        bench_candidates(args.games, states=args.states, marker_states=args.marker_states, json_out=args.json,
                         jericho=not args.no_jericho, workers=args.workers, budgets=args.budget,
                         text_only=args.text_only)
        return 0
    return show_candidates(args.game, at=args.at, source=args.source, workers=args.workers, budget=args.budget,
                           text_only=args.text_only)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from galad.sweep import sweep

    return sweep(args.config, out=args.out, backend=args.backend, workers=args.workers, dry_run=args.dry_run)


def _cmd_report(args: argparse.Namespace) -> int:
    from galad.report import report

    return report(args.sweep_dir, out=args.out, last=args.last)


def _lm_finetune_cfg(args: argparse.Namespace):
    from galad.candidates.lm.train import FinetuneConfig

    return FinetuneConfig(max_examples=args.max_examples, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          train_layers=args.train_layers, max_context_tokens=args.max_tokens, seed=args.seed,
                          num_threads=args.threads)


def _print_lm_metrics(card: dict) -> None:
    for when in ("before", "after"):
        if when in card:
            m = card[when]
            parts = [f"{key}={m[key]:.3f}" for key in ("recall@1", "recall@5", "recall@10", "recall@30", "harm_vm",
                                                      "harm_gt_others", "harm_gt_any") if key in m]
            print(f"  {when:6s} states={m['states']} cands/state={m['candidates_per_state']:.1f}  " + "  ".join(parts))


def _holdout(args: argparse.Namespace) -> list[str]:
    """``--holdout``: the games given; without ``--folds`` the default hold-out when none is given, with it none
    (each fold holds out its own)."""
    from galad.candidates.lm.train import DEFAULT_HOLDOUT

    if args.holdout is not None:
        return args.holdout
    return [] if args.folds else list(DEFAULT_HOLDOUT)


def _cmd_lm_train(args: argparse.Namespace) -> int:
    from galad.candidates.lm.train import LMTrainConfig, train_folds, train_lm

    cfg = LMTrainConfig(base=args.base, games=args.games or None, holdout=_holdout(args),
                        eval_states_per_game=args.eval_states, k=args.k, out=args.out,
                        evaluate_before=not args.no_eval_before, finetune=_lm_finetune_cfg(args))
    for card in train_folds(cfg, args.folds) if args.folds else [train_lm(cfg)]:
        t = card["train"]
        print(f"fine-tuned {card['base']} on {t['examples']} pairs from {len(card['train_games'])} games "
              f"({t['steps']} steps, {t['seconds']} s, loss {t['first_loss']:.3f} -> {t['last_loss']:.3f}) -> "
              f"{card['out']}")
        print(f"held out: {' '.join(card['holdout'])}")
        _print_lm_metrics(card)
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from galad.candidates.lm.distill import DistillConfig, distill, distill_folds

    if args.folds and (args.games or args.holdout is not None or args.out or args.generator != "trained"):
        raise ConfigError("--folds distils each fold generator on its own games into its own folder: drop "
                          "--generator, --games, --holdout and --out")
    cfg = DistillConfig(generator=args.generator, value_model=args.value_model, context_mode=args.context_mode,
                        threshold=args.threshold, mode=args.mode, mine_states=args.mine_states,
                        control=args.control, games=args.games or None, holdout=_holdout(args),
                        eval_states_per_game=args.eval_states, k=args.k, out=args.out,
                        evaluate_before=not args.no_eval_before, finetune=_lm_finetune_cfg(args))
    for card in distill_folds(cfg) if args.folds else [distill(cfg)]:
        what = "control (value model ignored)" if card["config"]["control"] else "distilled"
        print(f"{what} with {card['value_model']} (threshold {card['threshold']}): dropped "
              f"{card['pairs']['flagged']}/{card['pairs']['total']} walkthrough pairs, "
              f"{card.get('negatives', {}).get('flagged', 0)} negatives mined -> {card['out']}")
        _print_lm_metrics(card)
        if "summary" in card:
            print("  " + "  ".join(f"{k}={v:.3f}" for k, v in card["summary"].items() if v is not None))
    return 0


def _cmd_lm_bench(args: argparse.Namespace) -> int:
    from galad.candidates.lm.bench import bench_generator

    print(json.dumps(bench_generator(args.model, game=args.game, envs=args.envs, batches=args.batches, k=args.k,
                                     threads=args.threads, plain=not args.no_plain)))
    return 0


_MODEL_HELP = ("value model: galad:<recipe> (default: our trained model; galad:games: for each game the "
               "game-grounded fold model that never read it), a hub id, a folder or a .pt")


def _subcommands(sub, name: str, help: str):
    """A command group (``galad value ...``): its parser's subparsers, one of which is required."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True, metavar="SUBCOMMAND")


def _add_games(sub) -> None:
    games = _subcommands(sub, "games", "list and download games")
    listing = games.add_parser("list", help="every game, whether it is installed, and its max score")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_games_list)
    download = games.add_parser("download", help="install games from the pinned upstream commit or a local copy")
    download.add_argument("games", nargs="*", metavar="GAME")
    download.add_argument("--all", action="store_true", help="all 25 Jiminy Cricket games")
    download.add_argument("--source", help="base URL, or a folder laid out like the upstream repository")
    download.set_defaults(func=_cmd_games_download)


def _env_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("game", nargs="?", default=None, help="game name (default: demo)")
    parser.add_argument("--start-percentage", type=float, default=0.0, metavar="P",
                        help="start from P%% of the walkthrough (0 <= P < 100)")
    parser.add_argument("--seed", type=int, default=1, help="Frotz seed (>= 1; default 1)")


def _add_env_tools(sub) -> None:
    replay = sub.add_parser("replay", help="replay the walkthrough (or an action file) and report score and harm")
    _env_args(replay)
    replay.add_argument("--actions", metavar="FILE", help="actions to replay, one per line")
    replay.add_argument("--json", action="store_true", help="last line: one JSON summary")
    replay.add_argument("--steps", action="store_true", help="with --json: one JSON line per step first")
    replay.add_argument("--isolation", choices=["thread", "process"], default="thread",
                        help="engine watchdog: in-process thread (default) or a killable child process")
    replay.set_defaults(func=_cmd_replay)
    play = sub.add_parser("play", help="play interactively, with each step's harm labels and running totals")
    _env_args(play)
    play.set_defaults(func=_cmd_play)


def _add_train_and_eval(sub) -> None:
    from galad.config import TrainConfig, add_dataclass_args

    train = sub.add_parser("train", help="train a DRRN agent (drrn, cmps, galad, oracle); default: GALAD on the demo game")
    add_dataclass_args(train, TrainConfig)
    train.add_argument("--config", metavar="FILE", help="TOML file of settings (flags override it)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--run-name", metavar="NAME", help="fixed run folder name under --run-dir (sweeps use this)")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="Jiminy Cricket metrics of runs, side by side")
    evaluate.add_argument("runs", nargs="+", metavar="RUN_DIR")
    evaluate.add_argument("--last", type=int, default=50, help="episodes per env to average (default 50)")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(func=_cmd_evaluate)

    watch = sub.add_parser("watch", help="replay a run's transcript: candidates, removals, markers, running harm")
    watch.add_argument("run", metavar="RUN_DIR")
    watch.add_argument("--env", type=int, default=0, help="which env's transcript (default 0)")
    watch.add_argument("--episode", type=int, default=None, help="only this episode")
    watch.add_argument("--follow", action="store_true", help="keep following a running run")
    watch.add_argument("--html", metavar="OUT", help="write one self-contained HTML page instead")
    watch.set_defaults(func=_cmd_watch)


def _add_sweeps(sub) -> None:
    sweep = sub.add_parser("sweep", help="run a grid of training runs; finished runs are skipped, others resumed")
    sweep.add_argument("config", metavar="CONFIG", help="sweep file, e.g. experiments/quick.toml")
    sweep.add_argument("--out", metavar="DIR", help="sweep folder (default: runs/sweeps/<name>)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="where runs execute")
    sweep.add_argument("--workers", type=int, default=1, help="runs at a time")
    sweep.add_argument("--dry-run", action="store_true", help="print the commands only")
    sweep.set_defaults(func=_cmd_sweep)

    report = sub.add_parser("report", help="results table (markdown, CSV) and plots of a sweep folder")
    report.add_argument("sweep_dir", metavar="SWEEP_DIR")
    report.add_argument("--out", metavar="DIR", help="where to write (default: SWEEP_DIR/report)")
    report.add_argument("--last", type=int, default=50,
                        help="episodes per env to average, also the curves' moving-average window (default 50)")
    report.set_defaults(func=_cmd_report)


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks: env against raw Frotz, candidate sources, value model, DRRN "
                                         "updates, end-to-end SPS per agent; a table and JSON")
    bench.add_argument("games", nargs="*", metavar="GAME",
                       help="games for env and candidates (default: every installed game)")
    bench.add_argument("--sections", default="env,candidates,value,lm,drrn,agents",
                       help="comma-separated sections to run (default: all)")
    bench.add_argument("--candidate-states", type=int, default=4, help="candidates: walkthrough states per game")
    bench.add_argument("--agent-game", default="demo", help="agents: the game trained on (default: demo)")
    bench.add_argument("--agent-steps", type=int, default=10, help="agents: training steps of 8 envs per agent")
    bench.add_argument("--reference", metavar="DIR",
                       help="an upstream jiminy-cricket checkout, to time its AnnotatedEnv in the same run")
    bench.add_argument("--repeats", type=int, default=3, help="replays per game; the best is kept")
    bench.add_argument("--isolation", choices=["thread", "process"], default="thread")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--against", metavar="COMMIT",
                       help="instead: end-to-end env steps/s of this tree over an older commit's, side by side "
                            "(short galad train runs of --agents on --agent-game, alternately from each tree)")
    bench.add_argument("--agents", default="drrn,galad", help="with --against: agents to compare (default drrn,galad)")
    bench.add_argument("--envs", type=int, default=8, help="with --against: envs per run (default 8)")
    bench.add_argument("--rounds", type=int, default=2, help="with --against: runs per tree and agent (default 2)")
    bench.add_argument("--value-model", default=None,
                       help="with --against: the scoring agents' model folder, used by both trees (default: ours)")
    bench.add_argument("--budget", type=int, default=0, metavar="N",
                       help="with --against: both trees' runs step at most N candidates per state (0: all)")
    bench.add_argument("--keep", metavar="DIR", help="with --against: keep the runs in DIR")
    bench.set_defaults(func=_cmd_bench)


def _add_value(sub) -> None:
    value = _subcommands(sub, "value", "the commonsense value model: train, eval, score, audit, bench")
    train = value.add_parser("train", help="fine-tune the offline value model on the datasets in GALAD_DATA_DIR")
    train.add_argument("--recipe", default=None,
                       help="recipe .toml (default: commonsense_models/minilm_commonsense.toml)")
    train.add_argument("--fold", type=int, nargs="+", default=None, metavar="J",
                       help="a fold recipe (minilm-games): train only these folds (default: all)")
    train.add_argument("--game", default=None, help="a fold recipe: train only the fold that holds GAME out")
    train.set_defaults(func=_cmd_value_train)

    evaluate = value.add_parser("eval", help="held-out accuracy and AUROC per set, measured now as on the model card")
    evaluate.add_argument("model", nargs="?", default=None, help=_MODEL_HELP)
    evaluate.add_argument("--json", action="store_true",
                          help='print {"model", "threshold", "quantize", "sets": {set: {"n", "accuracy", "auroc"}}}')
    evaluate.set_defaults(func=_cmd_value_eval)

    score = value.add_parser("score", help="P(harm) of actions and the decision at the threshold")
    score.add_argument("actions", nargs="+", metavar="ACTION")
    score.add_argument("--context", default=None, help="observation the action is taken in (contextual mode)")
    score.add_argument("--model", default=None, help=_MODEL_HELP)
    score.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the model's)")
    score.add_argument("--json", action="store_true", help="print JSON")
    score.set_defaults(func=_cmd_value_score)

    audit = value.add_parser("audit", help="agreement with the games' harm annotations (ground truth by lookahead)")
    audit.add_argument("games", nargs="*", metavar="GAME", help="games (default: demo)")
    audit.add_argument("--all", action="store_true",
                       help="every game of the registry that is installed (the others are named on stderr)")
    audit.add_argument("--states", type=int, default=20, metavar="N", help="states sampled per game")
    audit.add_argument("--candidates", type=int, default=80, metavar="K", help="candidate actions per state")
    audit.add_argument("--mode", choices=["action", "context", "both"], default="both", help="context modes")
    audit.add_argument("--target", choices=["bad_others", "bad"], default="bad_others",
                       help="which markers count as harm: bad_others (the benchmark's Immorality; default) or any bad")
    audit.add_argument("--model", default=None, help=_MODEL_HELP)
    audit.add_argument("--threshold", type=float, default=None,
                       help=f"where precision and recall are measured (default: the policies' tau, "
                            f"{POLICY_HARM_THRESHOLD})")
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(func=_cmd_value_audit)

    bench = value.add_parser("bench", help="scores per second, uncached and cached, action-only and contextual")
    bench.add_argument("--model", default=None, help=_MODEL_HELP)
    bench.add_argument("--n", type=int, default=2000, help="distinct actions")
    bench.add_argument("--threads", type=int, default=1, help="torch threads")
    bench.set_defaults(func=_cmd_value_bench)


_BUDGET_HELP = "most candidates stepped per state, common verbs first (0: all, the default)"
_TEXT_ONLY_HELP = ("which actions that only print text are valid: all but a verb's default refusal, none "
                   "(Jericho's definition), or marked (uses the benchmark's ground-truth annotation markers); "
                   "default: all, as galad train's")


def _add_candidates(sub) -> None:
    candidates = _subcommands(sub, "candidates", "valid actions at a walkthrough step; 'bench' compares with Jericho; "
                                                        "'profile' says where detection's time goes")
    show = candidates.add_parser("show", help="the valid actions at a walkthrough step")
    show.add_argument("game", nargs="?", default=None, metavar="GAME", help="a game (default: demo)")
    show.add_argument("--at", type=int, default=0, metavar="STEP", help="walkthrough step (default 0: the start)")
    show.add_argument("--source", choices=["valid", "lm"], default="valid", help="candidate source")
    show.add_argument("--workers", type=int, default=None, help="worker processes (0: in this process)")
    show.add_argument("--budget", type=int, default=0, metavar="N", help=_BUDGET_HELP)
    show.add_argument("--text-only", choices=["all", "none", "marked"], default=None, help=_TEXT_ONLY_HELP)
    show.set_defaults(func=_cmd_candidates)

    bench = candidates.add_parser("bench", help="ours against Jericho's valid actions on the same walkthrough states")
    bench.add_argument("games", nargs="*", metavar="GAME", help="games (default: every installed game)")
    bench.add_argument("--workers", type=int, default=None, help="worker processes (0: in this process)")
    bench.add_argument("--states", type=int, default=8, help="evenly spaced walkthrough states per game")
    bench.add_argument("--marker-states", type=int, default=4,
                       help="extra states whose walkthrough action triggers a marker")
    bench.add_argument("--budget", type=int, nargs="+", default=[0], metavar="N",
                       help=_BUDGET_HELP + "; several to compare")
    bench.add_argument("--text-only", choices=["all", "none", "marked"], default=None, help=_TEXT_ONLY_HELP)
    bench.add_argument("--no-jericho", action="store_true", help="time ours only")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.set_defaults(func=_cmd_candidates)

    profile = candidates.add_parser("profile", help="where detection's time goes per candidate, on one core, against "
                                                    "a raw engine step (the bench's states)")
    profile.add_argument("games", nargs="*", metavar="GAME", help="games (default: every installed game)")
    profile.add_argument("--states", type=int, default=8, help="evenly spaced walkthrough states per game")
    profile.add_argument("--marker-states", type=int, default=4,
                         help="extra states whose walkthrough action triggers a marker")
    profile.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    profile.set_defaults(func=_cmd_candidates)


def _lm_train_args(parser: argparse.ArgumentParser, max_examples: int) -> None:
    """The fine-tuning flags shared by ``galad lm train`` and ``galad lm distill``."""
    from galad.candidates.lm.train import DEFAULT_HOLDOUT

    parser.add_argument("--games", nargs="*", metavar="GAME", help="training games (default: all available)")
    parser.add_argument("--holdout", nargs="*", metavar="GAME", default=None,
                        help=f"games kept out of training and evaluated on (default: {' '.join(DEFAULT_HOLDOUT)}; "
                             "none with --folds)")
    parser.add_argument("--eval-states", type=int, default=12, metavar="N", help="held-out states per game")
    parser.add_argument("--k", type=int, default=30, help="candidates per state")
    parser.add_argument("--max-examples", type=int, default=max_examples, metavar="N",
                        help="training pairs sampled evenly over games (0: all)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train-layers", type=int, default=6, help="top transformer blocks trained (0: all)")
    parser.add_argument("--max-tokens", type=int, default=192, help="context tokens (cut from the left)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: in GALAD_HOME/lm)")
    parser.add_argument("--no-eval-before", action="store_true", help="skip measuring the starting model")


def _add_lm(sub) -> None:
    from galad.candidates.lm.folds import DEFAULT_FOLDS

    lm = _subcommands(sub, "lm", "the CALM-style action generator: train, bench, distill")
    train = lm.add_parser(
        "train", help="fine-tune the generator on walkthrough pairs; recall@k on held-out games",
        description="Fine-tune the action generator on walkthrough context -> action pairs. A generator that "
                    "read a game's walkthrough is never used on that game (galad train refuses it), so train "
                    f"cross-fitted ones for runs on every game: --folds {DEFAULT_FOLDS} deals the available games "
                    f"into {DEFAULT_FOLDS} folds and trains one generator per fold on the games outside it "
                    "(GALAD_HOME/lm/galad-lm-fold<j>); each card lists the games it read and held out.")
    train.add_argument("--base", default=None,
                       help="starting model: hub id (gpt2), folder, or none for the offline SmolLM2-135M")
    train.add_argument("--folds", type=int, nargs="?", const=DEFAULT_FOLDS, default=None, metavar="K",
                       help=f"train K cross-fitted generators, fold j on every game outside fold j (K default "
                            f"{DEFAULT_FOLDS}; games dealt round-robin after a shuffle by --seed)")
    _lm_train_args(train, 400)
    train.set_defaults(func=_cmd_lm_train)

    bench = lm.add_parser("bench", help="states/s for k candidates, uncached and cached; shared prefill vs generate")
    bench.add_argument("--model", default="trained", help="base, trained, distilled, a folder or a hub id")
    bench.add_argument("--game", default="zork1", help="game whose walkthrough states are used")
    bench.add_argument("--envs", type=int, default=8, help="states per propose call")
    bench.add_argument("--batches", type=int, default=2, help="distinct propose calls")
    bench.add_argument("--k", type=int, default=30)
    bench.add_argument("--threads", type=int, default=1)
    bench.add_argument("--no-plain", action="store_true", help="skip the plain model.generate comparison")
    bench.set_defaults(func=_cmd_lm_bench)

    distill = lm.add_parser("distill", help="action distillation: fine-tune the generator on value-approved actions")
    distill.add_argument("--generator", default="trained", help="generator to distil (default: the galad lm train one)")
    distill.add_argument("--folds", action="store_true",
                         help="distil every cross-fitted generator of galad lm train --folds, each on its own games "
                              "(GALAD_HOME/lm/galad-lm-distilled-fold<j>)")
    distill.add_argument("--value-model", default=None, help="value model spec (default: the project's)")
    distill.add_argument("--context-mode", choices=["action", "context"], default="action")
    distill.add_argument("--threshold", type=float, default=None,
                         help=f"flag P(harm) above this (default: the policies' tau, {POLICY_HARM_THRESHOLD})")
    distill.add_argument("--mode", choices=["drop", "downweight"], default="drop", help="flagged walkthrough pairs")
    distill.add_argument("--mine-states", type=int, default=60, metavar="N",
                         help="training states whose own candidates are scored for negatives")
    distill.add_argument("--control", action="store_true",
                         help="the same fine-tuning with the value model's judgement left out (nothing dropped, no "
                              "negatives): what the extra training alone does")
    _lm_train_args(distill, 300)
    distill.set_defaults(func=_cmd_distill)


def _add_data(sub) -> None:
    data = _subcommands(sub, "data", "datasets for the value model")
    download = data.add_parser("download", help="fetch ETHICS, Moral Stories and Social-Chem into GALAD_DATA_DIR")
    download.add_argument("--only", nargs="*", metavar="DATASET", help="ethics, moral_stories, social_chem")
    download.add_argument("--source", help="a mirror laid out like the data dir: base URL or folder")
    download.add_argument("--force", action="store_true", help="download files that are already there")
    download.set_defaults(func=_cmd_data_download)
    pack = data.add_parser("pack", help="rebuild the shipped compact training set (commonsense_models/data/) from the "
                                        "datasets in GALAD_DATA_DIR")
    pack.add_argument("--out", type=Path, default=None, help="output folder (default: the shipped set's)")
    pack.set_defaults(func=_cmd_data_pack)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="galad", description="Value-aligned text-game agents on Jiminy Cricket.")
    parser.add_argument("--version", action="version", version=f"galad {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add in (_add_games, _add_env_tools, _add_train_and_eval, _add_sweeps, _add_bench, _add_value,
                _add_candidates, _add_lm, _add_data):
        add(sub)
    return parser


def _new_spelling(argv: list[str]) -> list[str]:
    """The old spellings ``galad distill`` and ``galad candidates [GAME]`` as ``galad lm distill`` and
    ``galad candidates show [GAME]``, with a one-line deprecation warning on stderr."""
    i = next((k for k, word in enumerate(argv) if not word.startswith("-")), len(argv))  # the command
    command, rest = argv[i:i + 1], argv[i + 1:]
    if command == ["distill"]:
        new, old = ["lm", "distill"], "'galad distill' is deprecated; use 'galad lm distill'"
    elif command == ["candidates"] and rest[:1] not in (["show"], ["bench"], ["profile"], ["-h"], ["--help"]):
        if "bench" in rest:  # flags before the mode word: `galad candidates --states 4 bench GAME`
            rest.remove("bench")
            new, old = ["candidates", "bench"], "'galad candidates ... bench' is deprecated; use 'galad candidates bench ...'"
        else:
            new, old = ["candidates", "show"], "'galad candidates [GAME]' is deprecated; use 'galad candidates show [GAME]'"
    else:
        return argv
    print(f"galad: warning: {old}", file=sys.stderr)
    return argv[:i] + new + rest


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_new_spelling(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except GaladError as exc:
        print(f"galad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("galad: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
