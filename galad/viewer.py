"""``galad watch``: replay a run's transcript in the terminal (rich) or as one self-contained HTML page.

Each step shows the observation, the candidates with their harm scores and Q-values, the candidates the
policy removed, the chosen action, fired markers and the running harm of the episode.
"""

from __future__ import annotations

import html
from pathlib import Path

from galad.atomic import write_text_atomic
from galad.env.annotations import CATEGORIES
from galad.runs import RunFolder, TranscriptLine


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def watch(run_dir: str, env: int = 0, episode: int | None = None, follow: bool = False,
          html_out: str | None = None) -> int:
    run = RunFolder.existing(run_dir)
    steps = run.transcript_lines(env, episode, follow=follow and not html_out)
    if html_out:
        write_html(run, list(steps), Path(html_out))
        print(f"wrote {html_out}")
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    harm = [0, 0, 0, 0]
    current = None
    for s in steps:
        if s.episode != current:
            current, harm = s.episode, [0, 0, 0, 0]
            console.rule(f"env {env} · episode {current}")
        for v in s.label_vectors:
            harm = [a + b for a, b in zip(harm, v)]
        table = Table(show_header=True, box=None, pad_edge=False)
        table.add_column("candidate")
        table.add_column("P(harm)", justify="right")
        table.add_column("Q", justify="right")
        for i, c in enumerate(s.candidates):
            style = "bold green" if c == s.action else ""
            table.add_row(f"[{style}]{escape(c)}[/{style}]" if style else escape(c), _fmt(s.harm[i]),
                          f"{s.q_values[i]:.2f}" if i < len(s.q_values) else "-")
        for c, h in zip(s.removed, s.removed_harm):
            table.add_row(f"[red strike]{escape(c)}[/red strike]", f"[red]{h:.2f}[/red]", "removed")
        markers = ", ".join(f"{m[0]} {v}" for m, v in zip(s.markers, s.label_vectors))
        title = (f"step {s.episode_step} · > {escape(s.action)} · reward {s.reward} · score {s.score}")
        body = escape(s.obs.strip()) + "\n"
        console.print(Panel(body, title=title, title_align="left"))
        console.print(table)
        if markers:
            colour = "red" if any(v[0] or v[1] for v in s.label_vectors) else "green"
            console.print(f"[{colour}]markers: {escape(markers)}[/{colour}]")
        console.print("[dim]episode harm so far: " + ", ".join(f"{k}={v}" for k, v in zip(CATEGORIES, harm)) + "[/dim]")
    return 0


def write_html(run: RunFolder, steps: list[TranscriptLine], out: Path) -> None:
    """One self-contained page (inline CSS, no scripts)."""
    cfg = run.config()
    rows = []
    harm = [0, 0, 0, 0]
    current = None
    for s in steps:
        if s.episode != current:
            current, harm = s.episode, [0, 0, 0, 0]
            rows.append(f"<h2>Episode {current}</h2>")
        for v in s.label_vectors:
            harm = [a + b for a, b in zip(harm, v)]
        cands = "".join(
            f"<li class='{'chosen' if c == s.action else ''}'>{html.escape(c)} "
            f"<span class='num'>P(harm) {_fmt(s.harm[i])} · Q {s.q_values[i]:.2f}</span></li>"
            for i, c in enumerate(s.candidates))
        removed = "".join(f"<li class='removed'>{html.escape(c)} <span class='num'>P(harm) {h:.2f}</span></li>"
                          for c, h in zip(s.removed, s.removed_harm))
        marks = "".join(
            f"<div class='marker {'bad' if v[0] or v[1] else 'good'}'>{html.escape(m[0])}: "
            + ", ".join(f"{k}={x}" for k, x in zip(CATEGORIES, v) if x) + "</div>"
            for m, v in zip(s.markers, s.label_vectors))
        rows.append(
            f"<div class='step'><div class='head'>step {s.episode_step} · &gt; <b>{html.escape(s.action)}</b>"
            f" · reward {s.reward} · score {s.score}</div><pre>{html.escape(s.obs.strip())}</pre>"
            f"<ul>{cands}{removed}</ul>{marks}<div class='harm'>episode harm: "
            + ", ".join(f"{k}={v}" for k, v in zip(CATEGORIES, harm)) + "</div></div>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(run.name)}</title><style>
body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}}
pre{{white-space:pre-wrap;background:#f6f6f6;padding:.5em}} .step{{border-top:1px solid #ccc;padding:.5em 0}}
.chosen{{font-weight:bold;color:#060}} .removed{{color:#b00;text-decoration:line-through}}
.num{{color:#777;font-size:.85em}} .marker.bad{{color:#b00}} .marker.good{{color:#060}} .harm{{color:#555}}
</style></head><body><h1>{html.escape(run.name)}</h1><p>game {html.escape(str(cfg.get('game')))},
agent {html.escape(str(cfg.get('agent')))}, seed {cfg.get('seed')}</p>{''.join(rows)}</body></html>"""
    write_text_atomic(out, page)
