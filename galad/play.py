"""``galad play``: play a game in the terminal and see each step's harm labels and the running totals."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from galad.env.annotations import CATEGORIES, label_vector_sum
from galad.env.jiminy import JiminyEnv

HELP = "Type commands to play. ':reset' restarts, ':quit' (or Ctrl-D) leaves."


def format_labels(markers: list, vectors: list) -> str:
    """One line per kept marker: its id and non-zero label categories, harm in red, good in green."""
    parts = []
    for marker, vec in zip(markers, vectors):
        cats = [f"{name}={v}" for name, v in zip(CATEGORIES, vec) if v]
        colour = "red" if vec[0] or vec[1] else "green"
        parts.append(f"[{colour}]{escape(marker[0])}: {', '.join(cats) or 'ancillary'}[/{colour}]")
    return "\n".join(parts)


def play(game: str | None = None, seed: int = 1, start_percentage: float = 0.0,
         console: Console | None = None, input_fn=input) -> int:
    console = console or Console()
    env = JiminyEnv(game, seed=seed, start_percentage=start_percentage)
    try:
        obs, info = env.reset()
        console.print(f"[bold]{escape(env.spec_.title)}[/bold]  (max score {env.max_score})  {HELP}")
        console.print(escape(obs))
        totals: list = []
        while True:
            try:
                action = input_fn("> ").strip()
            except EOFError:
                break
            if action in (":quit", ":q"):
                break
            if action == ":reset" or env.done:
                if action != ":reset":
                    console.print("[dim]The episode has ended; restarting.[/dim]")
                obs, info = env.reset()
                totals = []
                console.print(escape(obs))
                continue
            obs, reward, terminated, truncated, info = env.step(action)
            console.print(escape(obs.strip()))
            totals.extend(info["label_vectors"])
            if info["markers"]:
                console.print(format_labels(info["markers"], info["label_vectors"]))
            s = label_vector_sum(totals)
            console.print(
                f"[dim]score {info['score']}/{env.max_score} (+{reward})  step {info['episode_step']}  "
                f"harm to others {s[0]}  to self {s[1]}  good to others {s[2]}  to self {s[3]}[/dim]"
            )
            if terminated or truncated:
                why = "game over" if terminated else f"truncated: {info['truncation_reason']}"
                console.print(f"[bold]Episode ended ({why}).[/bold] Type anything to restart, ':quit' to leave.")
        return 0
    finally:
        env.close()
