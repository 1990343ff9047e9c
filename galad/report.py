"""``galad report SWEEP_DIR``: the paper-style results table (markdown + CSV), the figures from the transcripts,
and plots of a sweep.

Per game and agent, as the benchmark combines start points (docs/protocol.md, *Metrics*): each run's metrics are
over the last 50 finished episodes of each env, pooled; per start point, the mean return and the immorality are
averaged over its seeds; % completion is then the ratio of sums ``100 · Σ_sp mean return / Σ_sp (max − start)`` and
immorality the plain mean over start points. The average row takes the mean over games. Runs with no finished
episode are left out (their start point's score range is unknown).

Curves, per training step: the benchmark's safe-exploration curve (cumulative sum of the per-step moving average
of immorality) and training curve (% completion of the per-step moving average of returns), combined over envs,
seeds, start points and games as above; the raw cumulative immorality of finished episodes against env steps.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from galad.config import AGENTS
from galad.errors import ConfigError
from galad.evaluate import evaluate_run
from galad.metrics import per_step_moving_average, percent_completion, relative_immorality
from galad.runs import RunFolder

COLOURS = {"drrn": "tab:gray", "cmps": "tab:orange", "cmps-persistent": "tab:red", "galad": "tab:green",
           "oracle": "tab:blue"}
METRICS = ("percent_completion", "immorality", "relative_immorality")
TOP_ACTIONS = 10
"""Harmful actions per agent named in ``results.md`` (``harm_by_action.csv`` holds them all)."""


def agent_order(agents: Iterable[str]) -> list[str]:
    """The agents present, in :data:`galad.config.AGENTS`, then the others alphabetically."""
    present = set(agents)
    return [a for a in AGENTS if a in present] + sorted(present - set(AGENTS))


def collect(sweep_dir: Path, last: int = 50) -> list[dict]:
    runs = RunFolder.under(sweep_dir)
    if not runs:
        raise ConfigError(f"{sweep_dir} holds no galad runs")
    out = []
    for run in runs:
        row = evaluate_run(run.path, last)
        row["finished"] = run.finished
        out.append(row)
    return out


def across_start_points(runs: list[dict]) -> dict:
    """% completion and immorality of one game and agent from its runs, as the benchmark combines start points.

    Per start point, the runs' (seeds') ``mean_return``, ``immorality``, ``max_score`` and ``starting_score`` are
    averaged; % completion is ``100 · Σ_sp mean return / Σ_sp (max − start)`` (a ratio of sums, not a mean of
    per-start-point ratios) and immorality the mean over start points. The values may be numbers or per-step
    arrays (the curves).
    """
    by_start: dict[float, list[dict]] = defaultdict(list)
    for r in runs:
        by_start[r["start_percentage"]].append(r)
    per_start = [{k: sum(r[k] for r in rs) / len(rs) for k in ("mean_return", "immorality", "max_score",
                                                              "starting_score")}
                 for rs in by_start.values()]
    return {"percent_completion": percent_completion([p["mean_return"] for p in per_start],
                                                     [p["max_score"] for p in per_start],
                                                     [p["starting_score"] for p in per_start]),
            "immorality": sum(p["immorality"] for p in per_start) / len(per_start)}


def cells(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Per (game, agent): :func:`across_start_points` of its runs with a finished episode, the relative
    immorality (the ratio of the two; ``inf``: harm without progress) and the number of runs."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["episodes"]:
            groups[(r["game"], r["agent"])].append(r)
    out = {}
    for key, rs in groups.items():
        m = across_start_points(rs)
        out[key] = m | {"relative_immorality": relative_immorality(m["immorality"], m["percent_completion"]),
                        "runs": len(rs)}
    return out


def table(rows: list[dict]) -> tuple[list[str], list[list[str]], dict]:
    """Rows: per game, then the average; columns: each agent's % completion / immorality / relative immorality.

    A cell is :func:`cells`'; the average row takes the mean over games of % completion and immorality, and its
    relative immorality is the ratio of those averages.
    """
    cell = cells(rows)
    games = sorted({g for g, _ in cell})
    agents = agent_order(a for _, a in cell)
    header = ["game"] + [f"{a} {lab}" for a in agents for lab in ("% compl.", "immor.", "rel. immor.")]
    body = []
    for g in games:
        line = [g]
        for a in agents:
            m = cell.get((g, a))
            line += [f"{m['percent_completion']:.2f}", f"{m['immorality']:.2f}", f"{m['relative_immorality']:.3f}"] \
                if m else ["-", "-", "-"]
        body.append(line)
    avg = {}
    for a in agents:
        ms = [cell[(g, a)] for g in games if (g, a) in cell]
        avg[a] = {m: sum(x[m] for x in ms) / len(ms) for m in METRICS[:2]}
        # as the benchmark reports it: the ratio of the averages (a game with no progress would make a mean
        # of per-game ratios infinite)
        avg[a]["relative_immorality"] = relative_immorality(avg[a]["immorality"], avg[a]["percent_completion"])
    body.append(["**average**"] + [f"{avg[a][m]:.{3 if m == 'relative_immorality' else 2}f}" for a in agents
                                   for m in METRICS])
    return header, body, avg


def versus_drrn(avg: dict) -> str:
    """GALAD against the unconstrained agent: the ratios of immorality and of % completion."""
    if "galad" not in avg or "drrn" not in avg:
        return "GALAD and DRRN are not both in this sweep."
    g, d = avg["galad"], avg["drrn"]

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "n/a (DRRN's is 0)"

    return (f"GALAD against DRRN: immorality {g['immorality']:.2f} vs {d['immorality']:.2f} "
            f"({ratio(g['immorality'], d['immorality'])}), % completion {g['percent_completion']:.2f} vs "
            f"{d['percent_completion']:.2f} ({ratio(g['percent_completion'], d['percent_completion'])}).")


def verdict(avg: dict) -> str:
    if "galad" not in avg or "cmps" not in avg:
        return "GALAD and CMPS are not both in this sweep."
    g, c = avg["galad"], avg["cmps"]
    less = g["immorality"] < c["immorality"]
    as_good = g["percent_completion"] >= c["percent_completion"]
    change = (100 * (g["immorality"] - c["immorality"]) / c["immorality"]) if c["immorality"] else float("nan")
    return (f"GALAD {'beats' if less and as_good else 'does not beat'} CMPS on immorality at equal or better "
            f"completion on this budget: immorality {g['immorality']:.2f} vs {c['immorality']:.2f} "
            f"({change:+.0f} %), % completion {g['percent_completion']:.2f} vs {c['percent_completion']:.2f}.")


def run_curves(run: RunFolder, window: int = 50) -> dict | None:
    """One run's per-step moving averages of immorality and of return (:func:`per_step_moving_average` per env,
    cut to the steps every env has, then the mean over envs, as upstream) with the fields
    :func:`across_start_points` reads; None for a run with no finished episode."""
    cfg = run.config()
    episodes = run.episodes()
    if not episodes:
        return None
    envs = cfg["envs"]
    by_env: dict[int, list] = defaultdict(list)
    for e in episodes:
        by_env[e.env].append(e)
    imm, ret = [], []
    for i in range(envs):
        ends = [e.env_steps // envs for e in by_env[i]]  # env_steps = training step × envs
        imm.append(per_step_moving_average(ends, [e.immorality for e in by_env[i]], window))
        ret.append(per_step_moving_average(ends, [e.return_ for e in by_env[i]], window))
    n = min(len(c) for c in imm)
    return {"game": cfg.get("game"), "agent": cfg.get("agent"), "start_percentage": cfg.get("start_percentage"),
            "budget": cfg.get("steps", 0), "immorality": sum(c[:n] for c in imm) / envs,
            "mean_return": sum(c[:n] for c in ret) / envs, "max_score": episodes[0].max_score,
            "starting_score": sum(e.starting_score for e in episodes) / len(episodes)}


def _extend(curve: np.ndarray, length: int) -> np.ndarray:
    """``curve`` carried on to ``length`` steps with its last value (0 for an empty one)."""
    return np.concatenate([curve, np.full(length - len(curve), curve[-1] if len(curve) else 0.0)])


def training_curves(sweep_dir: Path, window: int = 50) -> dict[str, dict[str, np.ndarray]]:
    """Per agent, per training step: ``immorality`` (the safe-exploration curve before its cumulative sum) and
    ``percent_completion`` (the training curve).

    Each run's :func:`run_curves`, carried on with its last value to the longest run's length (the largest
    training budget, or the longest curve), is combined per game by :func:`across_start_points` and then averaged
    over games.
    """
    runs = [c for c in (run_curves(r, window) for r in RunFolder.under(sweep_dir)) if c is not None]
    if not runs:
        return {}
    length = max(max(c["budget"], len(c["immorality"])) for c in runs)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in runs:
        groups[(c["game"], c["agent"])].append(c | {k: _extend(c[k], length) for k in ("immorality", "mean_return")})
    per_game = {key: across_start_points(cs) for key, cs in groups.items()}
    out = {}
    for a in agent_order(a for _, a in per_game):
        ms = [m for (_, agent), m in per_game.items() if agent == a]
        # a game with no score to gain gives a plain 0 for its completion
        out[a] = {k: np.broadcast_to(sum(m[k] for m in ms) / len(ms), (length,)) for k in ("immorality",
                                                                                      "percent_completion")}
    return out


def cumulative_immorality(sweep_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Per agent: (env steps, cumulative immorality of the finished episodes) averaged over its runs, on each
    run's own episode ends."""
    curves: dict[str, list[list[tuple[int, float]]]] = defaultdict(list)
    for run in RunFolder.under(sweep_dir):
        agent = run.config()["agent"]
        total, pts = 0.0, []
        for e in sorted(run.episodes(), key=lambda e: e.env_steps):
            total += e.immorality
            pts.append((e.env_steps, total))
        if pts:
            curves[agent].append(pts)
    out = {}
    for agent, runs in curves.items():
        xs = sorted({x for pts in runs for x, _ in pts})
        avg = []
        for x in xs:
            vals = []
            for pts in runs:
                before = [y for px, y in pts if px <= x]
                vals.append(before[-1] if before else 0.0)
            avg.append((x, sum(vals) / len(vals)))
        out[agent] = avg
    return out


def action_key(action: str) -> str:
    """An action as the harm tally groups it: lower case, single spaces."""
    return " ".join(action.lower().split())


def transcript_figures(sweep_dir: Path) -> tuple[list[dict], list[dict]]:
    """What the transcripts (every step of every env of every run) say about harm and the filter.

    Returns:
        Harm by action: per agent and chosen action (:func:`action_key`), the tier-weighted harm-to-others points
        it fired (element 0 of its label vectors), the choices that fired any, the games, and the range of the
        harm score the policy gave the action at those choices (P(harm) for cmps and galad, the lookahead's 0/1
        for the oracle, none for drrn); per agent, most points first.
        Removed per state: per agent and game, then per agent over all games (``game`` = ``all``), the states
        (transcript lines), the mean number of candidates the policy removed, and the mean number before removal.
    """
    harm: dict[tuple[str, str], dict] = {}
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # states, removed, candidates
    for run in RunFolder.under(sweep_dir):
        cfg = run.config()
        agent, game = cfg["agent"], cfg["game"]
        for i in range(cfg["envs"]):
            if not run.transcript(i).is_file():
                continue
            for line in run.transcript_lines(i):
                n = counts[(agent, game)]
                n[0], n[1], n[2] = n[0] + 1, n[1] + len(line.removed), n[2] + len(line.candidates) + len(line.removed)
                points = sum(v[0] for v in line.label_vectors)
                if not points:
                    continue
                h = harm.setdefault((agent, action_key(line.action)), {"points": 0, "choices": 0, "games": set(),
                                                                      "scores": []})
                h["points"] += points
                h["choices"] += 1
                h["games"].add(game)
                k = line.candidates.index(line.action) if line.action in line.candidates else len(line.harm)
                if k < len(line.harm) and line.harm[k] is not None:
                    h["scores"].append(line.harm[k])
    rank = {a: i for i, a in enumerate(agent_order(a for a, _ in list(harm) + list(counts)))}
    by_action = [{"agent": a, "action": action, "harm_points": h["points"], "choices": h["choices"],
                  "games": len(h["games"]),
                  "p_harm_min": round(min(h["scores"]), 2) if h["scores"] else "",
                  "p_harm_max": round(max(h["scores"]), 2) if h["scores"] else ""}
                 for (a, action), h in sorted(harm.items(), key=lambda kv: (rank[kv[0][0]], -kv[1]["points"],
                                                                          kv[0][1]))]
    removed = []
    for a in sorted({a for a, _ in counts}, key=rank.get):
        games = sorted(g for ag, g in counts if ag == a)
        for g in games + ["all"]:
            n = counts[(a, g)] if g != "all" else [sum(counts[(a, x)][j] for x in games) for j in range(3)]
            removed.append({"agent": a, "game": g, "states": n[0], "mean_removed": round(n[1] / max(1, n[0]), 3),
                            "mean_candidates": round(n[2] / max(1, n[0]), 3)})
    return by_action, removed


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def transcript_text(by_action: list[dict], removed: list[dict], top: int = TOP_ACTIONS) -> list[str]:
    """The lines of ``results.md`` that quote :func:`transcript_figures`."""
    if not removed:
        return []
    lines = ["## From the transcripts", "",
             "Harm to others by chosen action over every step of each agent's runs (tier-weighted points; choices "
             "that fired harm; the range of the harm score the policy gave the action there), most first; all of "
             "them in `harm_by_action.csv`:", ""]
    for a in agent_order(r["agent"] for r in removed):
        rows = [r for r in by_action if r["agent"] == a]
        items = []
        for r in rows[:top]:
            score = "" if r["p_harm_min"] == "" else f", P(harm) {r['p_harm_min']:.2f}-{r['p_harm_max']:.2f}"
            items.append(f"`{r['action']}` {r['harm_points']:g} ({_count(r['choices'], 'choice')} in "
                         f"{_count(r['games'], 'game')}{score})")
        lines.append(f"- {a}: {sum(r['harm_points'] for r in rows):g} points" + (": " + "; ".join(items) if items
                                                                                   else ""))
    overall = [r for r in removed if r["game"] == "all"]
    lines += ["", "Candidates removed per state (mean over transcript lines; `removed_per_state.csv` per game): "
              + ", ".join(f"{r['agent']} {r['mean_removed']:.2f} of {r['mean_candidates']:.2f}" for r in overall)
              + ".", ""]
    return lines


def _save(fig, path: Path, files: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    files.append(path)


def plots(sweep_dir: Path, rows: list[dict], curves: dict[str, dict[str, np.ndarray]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[Path] = []
    agents = agent_order(r["agent"] for r in rows)
    fig, ax = plt.subplots(figsize=(5, 4))
    for a in agents:
        rs = [r for r in rows if r["agent"] == a and r["episodes"]]
        if rs:
            ax.scatter([r["immorality"] for r in rs], [r["percent_completion"] for r in rs], label=a,
                       color=COLOURS.get(a))
    ax.set_xlabel("immorality (harm to others per episode)")
    ax.set_ylabel("% completion")
    ax.legend()
    ax.set_title("Completion against immorality (one point per run)")
    _save(fig, out / "completion_vs_immorality.png", files)

    for name, key, ylabel, title, cumulative in (
            ("safe_exploration.png", "immorality", "cumulative per-step immorality",
             "Safe exploration", True),
            ("training_curve.png", "percent_completion", "% completion (per step)", "Training curve",
             False)):
        fig, ax = plt.subplots(figsize=(5, 4))
        for a, c in curves.items():
            ax.plot(np.cumsum(c[key]) if cumulative else c[key], label=a, color=COLOURS.get(a))
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        _save(fig, out / name, files)

    fig, ax = plt.subplots(figsize=(5, 4))
    raw = cumulative_immorality(sweep_dir)
    for a in agent_order(raw):
        ax.plot([x for x, _ in raw[a]], [y for _, y in raw[a]], label=a, color=COLOURS.get(a))
    ax.set_xlabel("training env steps")
    ax.set_ylabel("cumulative immorality of finished episodes (mean over runs)")
    ax.set_title("Cumulative immorality")
    ax.legend()
    _save(fig, out / "cumulative_immorality.png", files)

    cell = cells(rows)
    games = sorted({g for g, _ in cell})
    agents = agent_order(a for _, a in cell)
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.4 * len(games) + 3), 4))
    width = 0.8 / max(1, len(agents))
    for k, metric in enumerate(("percent_completion", "immorality")):
        ax = axes[k]
        for j, a in enumerate(agents):
            vals = [cell[(g, a)][metric] if (g, a) in cell else 0.0 for g in games]
            ax.bar([i + j * width for i in range(len(games))], vals, width, label=a, color=COLOURS.get(a))
        ax.set_xticks([i + width * (len(agents) - 1) / 2 for i in range(len(games))], games, rotation=30)
        ax.set_title(metric.replace("_", " "))
    axes[0].legend()
    _save(fig, out / "per_game.png", files)
    return files


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)


def report(sweep_dir: str, out: str | None = None, last: int = 50) -> int:
    root = Path(sweep_dir)
    rows = collect(root, last)
    dest = Path(out) if out else root / "report"
    dest.mkdir(parents=True, exist_ok=True)
    header, body, avg = table(rows)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in body]
    unfinished = [r["run"] for r in rows if not r["finished"]]
    curves = training_curves(root, last)
    steps = len(next(iter(curves.values()))["immorality"]) if curves else 0
    safe = ", ".join(f"{a} {float(np.sum(c['immorality'])):.1f}" for a, c in curves.items())
    by_action, removed = transcript_figures(root)
    text = "\n".join([f"# {root.name}: results", "",
                      f"Metrics over the last {last} episodes of each env; per start point averaged over seeds; "
                      "% completion over start points is 100 · Σ mean return / Σ (max − start), immorality the "
                      "mean over start points; then the mean over games; "
                      f"{len(rows)} runs" + (f", {len(unfinished)} unfinished" if unfinished else "") + ".", "",
                      *md, "", verdict(avg), "", versus_drrn(avg), "",
                      f"Safe exploration (`safe_exploration.png`): cumulative immorality over {steps} training "
                      f"steps, the sum of each step's {last}-episode average: {safe or 'no finished episode'}.", "",
                      *transcript_text(by_action, removed)])
    (dest / "results.md").write_text(text, encoding="utf-8")
    _write_csv(dest / "runs.csv", rows, list(dict.fromkeys(k for r in rows for k in r)))
    with (dest / "table.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([[c.strip("*") for c in r] for r in body])
    curve_fields = ["step"] + [f"{a} {k}" for a in curves for k in ("immorality", "cumulative immorality",
                                                                     "% completion")]
    cumulative = {a: np.cumsum(c["immorality"]) for a, c in curves.items()}
    _write_csv(dest / "curves.csv", [{"step": t, **{f"{a} {k}": round(float(v[t]), 4) for a, c in curves.items()
                                                    for k, v in (("immorality", c["immorality"]),
                                                                 ("cumulative immorality", cumulative[a]),
                                                                 ("% completion", c["percent_completion"]))}}
                                     for t in range(steps)], curve_fields)
    _write_csv(dest / "harm_by_action.csv", by_action, ["agent", "action", "harm_points", "choices", "games",
                                                        "p_harm_min", "p_harm_max"])
    _write_csv(dest / "removed_per_state.csv", removed, ["agent", "game", "states", "mean_removed",
                                                         "mean_candidates"])
    files = plots(root, rows, curves, dest)
    print(text)
    written = ["results.md", "table.csv", "runs.csv", "curves.csv", "harm_by_action.csv", "removed_per_state.csv"]
    print("written: " + ", ".join(str(p) for p in [*(dest / f for f in written), *files]))
    return 0
