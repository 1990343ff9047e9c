"""``galad report SWEEP_DIR``: the paper-style results table (markdown + CSV) and plots of a sweep.

Per game and agent, metrics are averaged over seeds and start points (each run's metrics are over the last
50 episodes of each env). The average row takes the mean over games. Plots: % completion against
immorality per agent, safe-exploration curves (cumulative immorality over training env steps), per-game bars.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from galad.errors import ConfigError
from galad.evaluate import evaluate_run
from galad.metrics import relative_immorality
from galad.runs import RunFolder

AGENT_ORDER = ("drrn", "cmps", "galad", "oracle")
METRICS = ("percent_completion", "immorality", "relative_immorality")


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


def table(rows: list[dict]) -> tuple[list[str], list[list[str]], dict]:
    """Rows: per game, then the average; columns: each agent's % completion / immorality / relative immorality.

    A cell's numbers are means over its runs (seeds, start points); its relative immorality is the ratio of
    those means, and the average row's the ratio of the averages over games (``inf``: harm without progress).
    """
    cell: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["episodes"]:
            cell[(r["game"], r["agent"])].append(r)
    games = sorted({g for g, _ in cell})
    agents = [a for a in AGENT_ORDER if any((g, a) in cell for g in games)]
    means: dict[tuple[str, str], dict[str, float]] = {}
    for key, rs in cell.items():
        means[key] = {m: sum(r[m] for r in rs) / len(rs) for m in METRICS[:2]} | {"runs": len(rs)}
        means[key]["relative_immorality"] = relative_immorality(means[key]["immorality"],
                                                                means[key]["percent_completion"])
    header = ["game"] + [f"{a} {lab}" for a in agents for lab in ("% compl.", "immor.", "rel. immor.")]
    body = []
    for g in games:
        line = [g]
        for a in agents:
            m = means.get((g, a))
            line += [f"{m['percent_completion']:.2f}", f"{m['immorality']:.2f}", f"{m['relative_immorality']:.3f}"] \
                if m else ["-", "-", "-"]
        body.append(line)
    avg = {}
    for a in agents:
        ms = [means[(g, a)] for g in games if (g, a) in means]
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


def safe_exploration(sweep_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Per agent: (env steps, cumulative immorality) averaged over its runs, on each run's own episode ends."""
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


def plots(sweep_dir: Path, rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    colours = {"drrn": "tab:gray", "cmps": "tab:orange", "galad": "tab:green", "oracle": "tab:blue"}
    fig, ax = plt.subplots(figsize=(5, 4))
    for a in AGENT_ORDER:
        rs = [r for r in rows if r["agent"] == a and r["episodes"]]
        if rs:
            ax.scatter([r["immorality"] for r in rs], [r["percent_completion"] for r in rs], label=a, c=colours[a])
    ax.set_xlabel("immorality (harm to others per episode)")
    ax.set_ylabel("% completion")
    ax.legend()
    ax.set_title("Completion against immorality (one point per run)")
    fig.tight_layout()
    files.append(out / "completion_vs_immorality.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    for a, pts in sorted(safe_exploration(sweep_dir).items(), key=lambda kv: AGENT_ORDER.index(kv[0])):
        ax.plot([x for x, _ in pts], [y for _, y in pts], label=a, c=colours.get(a))
    ax.set_xlabel("training env steps")
    ax.set_ylabel("cumulative immorality (mean over runs)")
    ax.set_title("Safe exploration")
    ax.legend()
    fig.tight_layout()
    files.append(out / "safe_exploration.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    games = sorted({r["game"] for r in rows})
    agents = [a for a in AGENT_ORDER if any(r["agent"] == a for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.4 * len(games) + 3), 4))
    width = 0.8 / max(1, len(agents))
    for k, metric in enumerate(("percent_completion", "immorality")):
        ax = axes[k]
        for j, a in enumerate(agents):
            vals = []
            for g in games:
                rs = [r[metric] for r in rows if r["game"] == g and r["agent"] == a and r["episodes"]]
                vals.append(sum(rs) / len(rs) if rs else 0.0)
            ax.bar([i + j * width for i in range(len(games))], vals, width, label=a, color=colours[a])
        ax.set_xticks([i + width * (len(agents) - 1) / 2 for i in range(len(games))], games, rotation=30)
        ax.set_title(metric.replace("_", " "))
    axes[0].legend()
    fig.tight_layout()
    files.append(out / "per_game.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files


def report(sweep_dir: str, out: str | None = None, last: int = 50) -> int:
    root = Path(sweep_dir)
    rows = collect(root, last)
    dest = Path(out) if out else root / "report"
    dest.mkdir(parents=True, exist_ok=True)
    header, body, avg = table(rows)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in body]
    unfinished = [r["run"] for r in rows if not r["finished"]]
    text = "\n".join([f"# {root.name}: results", "",
                      f"Metrics over the last {last} episodes of each env, averaged over seeds and start points; "
                      f"{len(rows)} runs" + (f", {len(unfinished)} unfinished" if unfinished else "") + ".", "",
                      *md, "", verdict(avg), "", versus_drrn(avg), ""])
    (dest / "results.md").write_text(text, encoding="utf-8")
    with (dest / "runs.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
        w.writeheader()
        w.writerows(rows)
    with (dest / "table.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([[c.strip("*") for c in r] for r in body])
    files = plots(root, rows, dest)
    print(text)
    print("written: " + ", ".join(str(p) for p in [dest / "results.md", dest / "table.csv", dest / "runs.csv", *files]))
    return 0
