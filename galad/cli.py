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
    from galad.bench import bench_env

    return bench_env(args.games, reference=args.reference, repeats=args.repeats, json_out=args.json,
                     isolation=args.isolation)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="galad", description="Value-aligned text-game agents on Jiminy Cricket.")
    p.add_argument("--version", action="version", version=f"galad {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    games = sub.add_parser("games", help="list and download games")
    gsub = games.add_subparsers(dest="games_command", required=True, metavar="SUBCOMMAND")
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

    bp = sub.add_parser("bench", help="benchmarks: env replay throughput against raw Frotz and the reference")
    bp.add_argument("games", nargs="*", metavar="GAME", help="games (default: every installed game)")
    bp.add_argument("--reference", metavar="DIR",
                    help="an upstream jiminy-cricket checkout, to time its AnnotatedEnv in the same run")
    bp.add_argument("--repeats", type=int, default=3, help="replays per game; the best is kept")
    bp.add_argument("--isolation", choices=["thread", "process"], default="thread")
    bp.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bp.set_defaults(func=_cmd_bench)
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
