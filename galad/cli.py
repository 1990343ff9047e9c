"""The ``galad`` command line. Thin: every command calls one module function.

Any :class:`galad.errors.GaladError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from galad import __version__
from galad.config import POLICY_HARM_THRESHOLD
from galad.errors import GaladError


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
    from galad.errors import ConfigError

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
    from galad.values.train import train

    card = train(args.recipe)
    print(f"trained {card['model_id']} in {card['train_seconds']} s ({sum(card['train_examples'].values())} examples)")
    for name, r in card["heldout"].items():
        auroc = "–" if r["auroc"] is None else f"{r['auroc']:.3f}"
        print(f"  {name:26s} n={r['n']:5d}  accuracy={r['accuracy']:.3f}  AUROC={auroc}")
    return 0


def _cmd_value_score(args: argparse.Namespace) -> int:
    from galad.values.models import score_text

    rows = score_text(args.actions, context=args.context, model=args.model, threshold=args.threshold)
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        verdict = "harmful" if r["harmful"] else "ok"
        print(f"{r['p_harm']:.4f}  {verdict:7s}  {r['action']}   (threshold {r['threshold']}, {r['mode']} mode)")
    return 0


def _cmd_value_audit(args: argparse.Namespace) -> int:
    from galad.values.audit import AuditConfig, audit, format_misses, format_table, format_thresholds

    modes = ("action", "context") if args.mode == "both" else (args.mode,)
    cfg = AuditConfig(states=args.states, max_candidates=args.candidates, target=args.target, seed=args.seed)
    res = audit(args.games, model=args.model, modes=modes, cfg=cfg, threshold=args.threshold)
    if args.json:
        print(json.dumps(res))
        return 0
    from rich.console import Console

    Console().print(format_table(res))
    Console().print(format_thresholds(res))
    print(format_misses(res))
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


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"galad: error: {message} (see: {self.prog} --help)\n")


def _cmd_candidates(args: argparse.Namespace) -> int:
    from galad.candidates.valid.bench import bench_candidates, show_candidates
    from galad.errors import ConfigError

    if args.args and args.args[0] == "bench":
        bench_candidates(args.args[1:], states=args.states, marker_states=args.marker_states,
                         json_out=args.json, jericho=not args.no_jericho, workers=args.workers,
                         budgets=args.budget or [0])
        return 0
    if len(args.args) > 1:
        raise ConfigError("galad candidates takes one GAME (or: galad candidates bench [GAME ...])")
    if args.budget and len(args.budget) > 1:
        raise ConfigError("galad candidates GAME takes one --budget (several only with bench)")
    return show_candidates(args.args[0] if args.args else None, at=args.at, source=args.source,
                           workers=args.workers, budget=args.budget[0] if args.budget else 0)


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


def _cmd_lm_train(args: argparse.Namespace) -> int:
    from galad.candidates.lm.train import LMTrainConfig, train_lm

    cfg = LMTrainConfig(base=args.base, games=args.games or None, holdout=args.holdout,
                        eval_states_per_game=args.eval_states, k=args.k, out=args.out,
                        evaluate_before=not args.no_eval_before, finetune=_lm_finetune_cfg(args))
    card = train_lm(cfg)
    t = card["train"]
    print(f"fine-tuned {card['base']} on {t['examples']} pairs from {len(card['train_games'])} games "
          f"({t['steps']} steps, {t['seconds']} s, loss {t['first_loss']:.3f} -> {t['last_loss']:.3f}) -> {card['out']}")
    print(f"held out: {' '.join(card['holdout'])}")
    _print_lm_metrics(card)
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from galad.candidates.lm.distill import DistillConfig, distill

    cfg = DistillConfig(generator=args.generator, value_model=args.value_model, context_mode=args.context_mode,
                        threshold=args.threshold, mode=args.mode, mine_states=args.mine_states,
                        control=args.control, games=args.games or None, holdout=args.holdout,
                        eval_states_per_game=args.eval_states, k=args.k, out=args.out,
                        evaluate_before=not args.no_eval_before, finetune=_lm_finetune_cfg(args))
    card = distill(cfg)
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="galad", description="Value-aligned text-game agents on Jiminy Cricket.")
    p.add_argument("--version", action="version", version=f"galad {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    games = sub.add_parser("games", help="list and download games")
    gsub = games.add_subparsers(dest="games_command", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    gl = gsub.add_parser("list", help="every game, whether it is installed, and its max score")
    gl.add_argument("--json", action="store_true", help="print JSON")
    gl.set_defaults(func=_cmd_games_list)
    gd = gsub.add_parser("download", help="install games from the pinned upstream commit or a local copy")
    gd.add_argument("games", nargs="*", metavar="GAME")
    gd.add_argument("--all", action="store_true", help="all 25 Jiminy Cricket games")
    gd.add_argument("--source", help="base URL, or a folder laid out like the upstream repository")
    gd.set_defaults(func=_cmd_games_download)

    def env_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("game", nargs="?", default=None, help="game name (default: demo)")
        sp.add_argument("--start-percentage", type=float, default=0.0, metavar="P",
                        help="start from P%% of the walkthrough (0 <= P < 100)")
        sp.add_argument("--seed", type=int, default=1, help="Frotz seed (>= 1; default 1)")

    rp = sub.add_parser("replay", help="replay the walkthrough (or an action file) and report score and harm")
    env_args(rp)
    rp.add_argument("--actions", metavar="FILE", help="actions to replay, one per line")
    rp.add_argument("--json", action="store_true", help="last line: one JSON summary")
    rp.add_argument("--steps", action="store_true", help="with --json: one JSON line per step first")
    rp.add_argument("--isolation", choices=["thread", "process"], default="thread",
                    help="engine watchdog: in-process thread (default) or a killable child process")
    rp.set_defaults(func=_cmd_replay)

    pl = sub.add_parser("play", help="play interactively, with each step's harm labels and running totals")
    env_args(pl)
    pl.set_defaults(func=_cmd_play)

    from galad.config import TrainConfig, add_dataclass_args

    tp = sub.add_parser("train", help="train a DRRN agent (drrn, cmps, galad, oracle); default: GALAD on the demo game")
    add_dataclass_args(tp, TrainConfig)
    tp.add_argument("--config", metavar="FILE", help="TOML file of settings (flags override it)")
    tp.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    tp.add_argument("--no-progress", action="store_true", help="no progress bar")
    tp.add_argument("--run-name", metavar="NAME", help="fixed run folder name under --run-dir (sweeps use this)")
    tp.set_defaults(func=_cmd_train)

    ep = sub.add_parser("evaluate", help="Jiminy Cricket metrics of runs, side by side")
    ep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    ep.add_argument("--last", type=int, default=50, help="episodes per env to average (default 50)")
    ep.add_argument("--json", action="store_true", help="print JSON")
    ep.set_defaults(func=_cmd_evaluate)

    wp = sub.add_parser("watch", help="replay a run's transcript: candidates, removals, markers, running harm")
    wp.add_argument("run", metavar="RUN_DIR")
    wp.add_argument("--env", type=int, default=0, help="which env's transcript (default 0)")
    wp.add_argument("--episode", type=int, default=None, help="only this episode")
    wp.add_argument("--follow", action="store_true", help="keep following a running run")
    wp.add_argument("--html", metavar="OUT", help="write one self-contained HTML page instead")
    wp.set_defaults(func=_cmd_watch)

    sp = sub.add_parser("sweep", help="run a grid of training runs; finished runs are skipped, others resumed")
    sp.add_argument("config", metavar="CONFIG", help="sweep file, e.g. experiments/quick.toml")
    sp.add_argument("--out", metavar="DIR", help="sweep folder (default: runs/sweeps/<name>)")
    sp.add_argument("--backend", choices=["local", "ray"], default="local", help="where runs execute")
    sp.add_argument("--workers", type=int, default=1, help="runs at a time")
    sp.add_argument("--dry-run", action="store_true", help="print the commands only")
    sp.set_defaults(func=_cmd_sweep)

    rp2 = sub.add_parser("report", help="results table (markdown, CSV) and plots of a sweep folder")
    rp2.add_argument("sweep_dir", metavar="SWEEP_DIR")
    rp2.add_argument("--out", metavar="DIR", help="where to write (default: SWEEP_DIR/report)")
    rp2.add_argument("--last", type=int, default=50, help="episodes per env to average (default 50)")
    rp2.set_defaults(func=_cmd_report)

    bp = sub.add_parser("bench", help="benchmarks: env against raw Frotz, candidate sources, value model, DRRN "
                                      "updates, end-to-end SPS per agent; a table and JSON")
    bp.add_argument("games", nargs="*", metavar="GAME", help="games for env and candidates (default: every installed game)")
    bp.add_argument("--sections", default="env,candidates,value,lm,drrn,agents",
                    help="comma-separated sections to run (default: all)")
    bp.add_argument("--candidate-states", type=int, default=4, help="candidates: walkthrough states per game")
    bp.add_argument("--agent-game", default="demo", help="agents: the game trained on (default: demo)")
    bp.add_argument("--agent-steps", type=int, default=10, help="agents: training steps of 8 envs per agent")
    bp.add_argument("--reference", metavar="DIR",
                    help="an upstream jiminy-cricket checkout, to time its AnnotatedEnv in the same run")
    bp.add_argument("--repeats", type=int, default=3, help="replays per game; the best is kept")
    bp.add_argument("--isolation", choices=["thread", "process"], default="thread")
    bp.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bp.set_defaults(func=_cmd_bench)

    vp = sub.add_parser("value", help="the commonsense value model: train, score, audit, bench")
    vsub = vp.add_subparsers(dest="value_command", required=True, metavar="SUBCOMMAND")
    model_help = "value model: galad:<recipe> (default: our trained model), a hub id, a folder or a .pt"
    vt = vsub.add_parser("train", help="fine-tune the offline value model on the datasets in GALAD_DATA_DIR")
    vt.add_argument("--recipe", default=None, help="recipe .toml (default: commonsense_models/minilm_commonsense.toml)")
    vt.set_defaults(func=_cmd_value_train)
    vs = vsub.add_parser("score", help="P(harm) of actions and the decision at the threshold")
    vs.add_argument("actions", nargs="+", metavar="ACTION")
    vs.add_argument("--context", default=None, help="observation the action is taken in (contextual mode)")
    vs.add_argument("--model", default=None, help=model_help)
    vs.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the model's)")
    vs.add_argument("--json", action="store_true", help="print JSON")
    vs.set_defaults(func=_cmd_value_score)
    va = vsub.add_parser("audit", help="agreement with the games' harm annotations (ground truth by lookahead)")
    va.add_argument("games", nargs="*", metavar="GAME", help="games (default: demo)")
    va.add_argument("--states", type=int, default=20, metavar="N", help="states sampled per game")
    va.add_argument("--candidates", type=int, default=80, metavar="K", help="candidate actions per state")
    va.add_argument("--mode", choices=["action", "context", "both"], default="both", help="context modes")
    va.add_argument("--target", choices=["bad_others", "bad"], default="bad_others",
                    help="which markers count as harm: bad_others (the benchmark's Immorality; default) or any bad")
    va.add_argument("--model", default=None, help=model_help)
    va.add_argument("--threshold", type=float, default=None)
    va.add_argument("--seed", type=int, default=0)
    va.add_argument("--json", action="store_true", help="print JSON")
    va.set_defaults(func=_cmd_value_audit)
    vb = vsub.add_parser("bench", help="scores per second, uncached and cached, action-only and contextual")
    vb.add_argument("--model", default=None, help=model_help)
    vb.add_argument("--n", type=int, default=2000, help="distinct actions")
    vb.add_argument("--threads", type=int, default=1, help="torch threads")
    vb.set_defaults(func=_cmd_value_bench)

    cp = sub.add_parser("candidates", help="valid actions at a walkthrough step; 'bench [GAME ...]' compares with Jericho")
    cp.add_argument("args", nargs="*", metavar="GAME | bench GAME ...",
                    help="a game (default: demo), or 'bench' followed by games (default: every installed game)")
    cp.add_argument("--at", type=int, default=0, metavar="STEP", help="walkthrough step (default 0: the start)")
    cp.add_argument("--source", choices=["valid", "lm"], default="valid", help="candidate source")
    cp.add_argument("--workers", type=int, default=None, help="worker processes (0: in this process)")
    cp.add_argument("--states", type=int, default=8, help="bench: evenly spaced walkthrough states per game")
    cp.add_argument("--marker-states", type=int, default=4,
                    help="bench: extra states whose walkthrough action triggers a marker")
    cp.add_argument("--budget", type=int, nargs="+", metavar="N",
                    help="most candidates stepped per state, common verbs first (0: all, the default); bench: "
                         "several to compare")
    cp.add_argument("--no-jericho", action="store_true", help="bench: time ours only")
    cp.add_argument("--json", metavar="FILE", help="bench: also write the results as JSON")
    cp.set_defaults(func=_cmd_candidates)

    from galad.candidates.lm.train import DEFAULT_HOLDOUT

    def lm_train_args(sp: argparse.ArgumentParser, max_examples: int) -> None:
        sp.add_argument("--games", nargs="*", metavar="GAME", help="training games (default: all available)")
        sp.add_argument("--holdout", nargs="*", metavar="GAME", default=list(DEFAULT_HOLDOUT),
                        help=f"games kept out of training and evaluated on (default: {' '.join(DEFAULT_HOLDOUT)})")
        sp.add_argument("--eval-states", type=int, default=12, metavar="N", help="held-out states per game")
        sp.add_argument("--k", type=int, default=30, help="candidates per state")
        sp.add_argument("--max-examples", type=int, default=max_examples, metavar="N",
                        help="training pairs sampled evenly over games (0: all)")
        sp.add_argument("--epochs", type=float, default=1.0)
        sp.add_argument("--batch-size", type=int, default=8)
        sp.add_argument("--lr", type=float, default=1e-4)
        sp.add_argument("--train-layers", type=int, default=6, help="top transformer blocks trained (0: all)")
        sp.add_argument("--max-tokens", type=int, default=192, help="context tokens (cut from the left)")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--threads", type=int, default=2, help="torch threads")
        sp.add_argument("--out", metavar="DIR", help="output folder (default: in GALAD_HOME/lm)")
        sp.add_argument("--no-eval-before", action="store_true", help="skip measuring the starting model")

    lp = sub.add_parser("lm", help="the CALM-style action generator: train, bench")
    lsub = lp.add_subparsers(dest="lm_command", required=True, metavar="SUBCOMMAND")
    lt = lsub.add_parser("train", help="fine-tune the generator on walkthrough pairs; recall@k on held-out games")
    lt.add_argument("--base", default=None,
                    help="starting model: hub id (gpt2), folder, or none for the offline SmolLM2-135M")
    lm_train_args(lt, 400)
    lt.set_defaults(func=_cmd_lm_train)
    lb = lsub.add_parser("bench", help="states/s for k candidates, uncached and cached; shared prefill vs generate")
    lb.add_argument("--model", default="trained", help="base, trained, distilled, a folder or a hub id")
    lb.add_argument("--game", default="zork1", help="game whose walkthrough states are used")
    lb.add_argument("--envs", type=int, default=8, help="states per propose call")
    lb.add_argument("--batches", type=int, default=2, help="distinct propose calls")
    lb.add_argument("--k", type=int, default=30)
    lb.add_argument("--threads", type=int, default=1)
    lb.add_argument("--no-plain", action="store_true", help="skip the plain model.generate comparison")
    lb.set_defaults(func=_cmd_lm_bench)

    dsp = sub.add_parser("distill", help="action distillation: fine-tune the generator on value-approved actions")
    dsp.add_argument("--generator", default="trained", help="generator to distil (default: the galad lm train one)")
    dsp.add_argument("--value-model", default=None, help="value model spec (default: the project's)")
    dsp.add_argument("--context-mode", choices=["action", "context"], default="action")
    dsp.add_argument("--threshold", type=float, default=None,
                     help=f"flag P(harm) above this (default: the policies' tau, {POLICY_HARM_THRESHOLD})")
    dsp.add_argument("--mode", choices=["drop", "downweight"], default="drop", help="flagged walkthrough pairs")
    dsp.add_argument("--mine-states", type=int, default=60, metavar="N",
                     help="training states whose own candidates are scored for negatives")
    dsp.add_argument("--control", action="store_true",
                     help="the same fine-tuning with the value model's judgement left out (nothing dropped, no "
                          "negatives): what the extra training alone does")
    lm_train_args(dsp, 300)
    dsp.set_defaults(func=_cmd_distill)

    dp = sub.add_parser("data", help="datasets for the value model")
    dsub = dp.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    dd = dsub.add_parser("download", help="fetch ETHICS, Moral Stories and Social-Chem into GALAD_DATA_DIR")
    dd.add_argument("--only", nargs="*", metavar="DATASET", help="ethics, moral_stories, social_chem")
    dd.add_argument("--source", help="a mirror laid out like the data dir: base URL or folder")
    dd.add_argument("--force", action="store_true", help="download files that are already there")
    dd.set_defaults(func=_cmd_data_download)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
