"""Judging the replies of stepped candidates, and collapsing them into one action per distinct outcome.

A candidate the parser understood is valid when it changes the world; one that only prints text is valid too
(``text_only="all"``), unless its template gives that same reply, object names masked, for several objects: the
verb's default refusal ("You can't wear the _."). :func:`collapse` then keeps one representative action per
distinct outcome (:func:`outcome_key`), the :class:`Detection`. Only ``text_only="marked"`` reads the annotation
markers of the replies (the benchmark's ground truth); the other modes find the same actions in replies with the
markers cut out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from galad.candidates.base import DIRECTION_WORDS
from galad.candidates.valid.grammar import Grammar, verb_usage
from galad.candidates.valid.probe import MARKER, Outcome

TOKEN = re.compile(r"[a-z][a-z'-]*")
"""A word of a reply (lower case)."""


@dataclass
class Detection:
    """The result of :meth:`~galad.candidates.valid.source.ValidActionSource.detect` for one state."""

    actions: list[str]
    """One action per distinct valid outcome, in template order."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """Representative action -> every candidate that led to the same outcome."""
    signatures: dict[str, str] = field(default_factory=dict)
    """Representative action -> its outcome signature."""
    objects: list[str] = field(default_factory=list)
    """Object names used."""
    n_candidates: int = 0
    """Candidates stepped."""
    skipped: list[Outcome] = field(default_factory=list)
    """Candidates that halted the emulator or overran the step bound."""
    seconds: float = 0.0
    """Wall time of the detection."""


def words(text: str) -> list[str]:
    """The lower-case words of a reply, annotation markers left out."""
    return TOKEN.findall(MARKER.sub("", text).lower())


def body(text: str) -> str:
    """A reply without its status line (padded with runs of spaces: room name, score, moves or time)."""
    return "\n".join(ln for ln in text.split("\n") if "   " not in ln)


def judge(outcomes: list[Outcome], grammar: Grammar, template_of: dict[str, str], text_only: str) -> None:
    """Mark invalid the text-only outcomes that ``text_only`` (:attr:`ValidConfig.text_only`) does not keep:
    a verb's default refusals (``all``), those without a :data:`~galad.candidates.valid.probe.MARKER`
    (``marked``), all (``none``)."""
    if text_only == "all":
        mark_default_replies(outcomes, template_of, grammar)
        return
    for o in outcomes:
        if o.status == "valid" and not o.changed and not (text_only == "marked" and MARKER.search(o.text)):
            o.status = "invalid"


def mark_default_replies(outcomes: list[Outcome], template_of: dict[str, str], grammar: Grammar) -> None:
    """Text-only replies a template gives for several different objects are the verb's default
    refusal ("You can't wear the _."), not a response to the object: mark them invalid."""
    names = grammar.nouns | grammar.adjectives
    word: dict[str, str] = {}
    done: dict[str, str] = {}

    def masked(text: str) -> str:
        m = done.get(text)
        if m is None:
            parts = []
            for t in words(text):
                w = word.get(t)
                if w is None:
                    w = word[t] = "_" if grammar.key(t) in names else t
                parts.append(w)
            m = done[text] = " ".join(parts)
        return m

    seen: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.status != "valid" or o.changed:
            continue
        tpl = template_of.get(o.action, o.action)
        if "OBJ" not in tpl:
            continue
        seen.setdefault((tpl, masked(o.text)), []).append(o)
    for group in seen.values():
        if len(group) >= 2:
            for o in group:
                o.status = "invalid"


def representative(actions: list[str]) -> str:
    """The name of a group of actions with one outcome: a compass direction, else the fewest words, the verb
    players use most ("take bowl", not "carry bowl"), then the longest spelling."""
    def rank(a: str) -> tuple:
        words = a.split()
        return (words[0] not in DIRECTION_WORDS, len(words), -verb_usage(a), -len(a))
    return min(actions, key=rank)


def outcome_key(o: Outcome, text_only: str) -> str:
    """What makes two outcomes one action under ``text_only`` (:attr:`ValidConfig.text_only`): the world and the
    reply as the player sees it (``all``: text-only replies are actions, each its own), the effect on the world
    (``none``), or the effect and the reply's markers (``marked``, which reads the benchmark's ground truth)."""
    if text_only == "all":
        return o.signature
    if text_only == "marked":
        return o.effect + "".join(MARKER.findall(o.text))
    return o.effect


def collapse(outcomes: list[Outcome], text_only: str) -> Detection:
    """One action per distinct :func:`outcome_key` among the valid outcomes."""
    groups: dict[str, list[Outcome]] = {}
    skipped = []
    for o in outcomes:
        if o.status == "valid":
            groups.setdefault(outcome_key(o, text_only), []).append(o)
        elif o.status in ("halted", "timeout"):
            skipped.append(o)
    reps: dict[str, list[str]] = {}
    sigs: dict[str, str] = {}
    for group in groups.values():
        acts = [o.action for o in group]
        rep = representative(acts)
        reps[rep] = acts
        sigs[rep] = group[acts.index(rep)].signature
    return Detection(list(reps), reps, sigs, skipped=skipped)
