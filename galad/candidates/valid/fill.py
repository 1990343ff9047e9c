"""Candidates: the objects a state's text names, filled into the game's templates, and ranked for a budget.

Objects are the words of the observation, ``look`` and ``inventory`` that the game's dictionary knows as nouns
(plus adjective-noun pairs); each is examined once from the saved state, names the parser rejects are dropped
and names that reach the same object (same reply, same world) collapse into one. The caller keeps, per
detection, each candidate's template (``template_of``) and first object (``object_of``), which the functions
here fill in and read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from galad.candidates.base import DIRECTION_WORDS
from galad.candidates.valid.grammar import Grammar
from galad.candidates.valid.probe import Outcome
from galad.candidates.valid.replies import TOKEN, body, words

_SAID_VERB_USAGE = 1000  # the ClubFloyd count a verb the state's text uses ranks with at least ("pull", "climb")

_NOT_OBJECTS = frozenset(
    "a an the it its them him her his hers you your me my myself self yourself i here there all everything "
    "some this that these those one and or but of to in on at by with from".split()
)

_PARENS = re.compile(r"\([^)]*\)")
_ITEM_SPLIT = re.compile(r"[\n,;:.!]|\band\b")


def find_objects(step: Callable[[list[str]], list[Outcome]], grammar: Grammar, obs: str, look: str,
                 inventory: str, max_objects: int) -> tuple[list[str], set[str]]:
    """``(objects, held)``: at most ``max_objects`` distinct objects named in the texts (inventory first, then
    ``look``, then the observation), one name per object, and those of them the player holds. ``step``: the
    outcomes of actions stepped from the state (one per action it did not skip)."""
    names = _named(grammar, (inventory, look, obs))
    ordered = sorted(names, key=lambda n: (names[n], len(n.split()), n))
    outs = {o.action: o for o in step([f"{grammar.examine} {n}" for n in ordered])}
    by_sig: dict[str, str] = {}
    for name in ordered:
        o = outs.get(f"{grammar.examine} {name}")
        if o is not None and o.status == "valid" and o.signature not in by_sig:
            by_sig[o.signature] = name
    objects = list(by_sig.values())[:max_objects]
    return objects, _held(grammar, objects, inventory)


def text_inputs(grammar: Grammar, obs: str, look: str, inventory: str, budget: bool) -> bytes:
    """All that detection reads from a state's texts (besides what it steps): the names they give objects and
    which text names each first (:func:`find_objects`), the heads of the inventory's items (:func:`_held`),
    the nouns of the observation (:func:`pair_objects`) and, with a budget, the words of all three
    (:func:`ranked`). Two states of one world with equal inputs get the same detection."""
    said = {grammar.key(t) for t in words(obs)}
    parts = [sorted(_named(grammar, (inventory, look, obs)).items()), sorted(_inventory_heads(grammar, inventory)),
             sorted(said & grammar.nouns)]
    if budget:
        parts.append(sorted(said | {grammar.key(t) for text in (look, inventory) for t in words(text)}))
    return repr(parts).encode("utf-8", "replace")


def _named(grammar: Grammar, texts: Iterable[str]) -> dict[str, int]:
    """Name -> priority (the index of the first text naming it): the dictionary's nouns in the texts, and an
    adjective or noun before one with it."""
    names: dict[str, int] = {}
    for prio, text in enumerate(texts):
        toks = words(text)
        for i, tok in enumerate(toks):
            if tok in _NOT_OBJECTS or tok in DIRECTION_WORDS or grammar.key(tok) not in grammar.nouns:
                continue
            names.setdefault(tok, prio)
            prev = toks[i - 1] if i else ""
            if prev and prev not in _NOT_OBJECTS and grammar.key(prev) in (grammar.adjectives or grammar.nouns):
                names.setdefault(f"{prev} {tok}", prio)
    return names


def _held(grammar: Grammar, objects: list[str], inventory: str) -> set[str]:
    """The objects the inventory lists.

    An inventory item ends with its noun ("A pot of gold", "a small stone (providing light)"), one per line or
    in a list ("You have a coin, an earthworm and a stone."): matching any word would take the held "gold
    coffin" for the "gold" on the floor.
    """
    heads = _inventory_heads(grammar, inventory)

    def is_held(name: str) -> bool:
        w = grammar.key(name.split()[-1])
        # a shorter synonym of the listed noun counts too ("match" for "A matchbook")
        return w in heads or (len(w) >= 4 and any(h.startswith(w) for h in heads))

    return {o for o in objects if is_held(o)}


def _inventory_heads(grammar: Grammar, inventory: str) -> set[str]:
    """The last word of each item the inventory lists (its noun), as the grammar keys it."""
    heads = set()
    for item in _ITEM_SPLIT.split(_PARENS.sub("", body(inventory).lower())):
        toks = TOKEN.findall(item)
        if toks:
            heads.add(grammar.key(toks[-1]))
    return heads


def fill(grammar: Grammar, spec, objects: list[str], held: set[str], arities: tuple[int, ...],
         template_of: dict[str, str], object_of: dict[str, str],
         skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Fill the templates with ``arities`` holes, but those in ``skip``, with ``objects``; the game's blocked
    actions are left out. Records each candidate's template in ``template_of`` and its first object in
    ``object_of`` (the first seen wins)."""
    out: list[str] = []
    for t in grammar.templates:
        if t.holes not in arities or t.text in skip:
            continue
        n0 = len(out)
        if t.holes == 0:
            out.append(t.text)
        elif t.holes in (1, 2):
            filled = _one_object(t, objects, held) if t.holes == 1 else _two_objects(t, objects, held)
            for a, o in filled:
                out.append(a)
                object_of.setdefault(a, o)
        for a in out[n0:]:
            template_of.setdefault(a, t.text)
    return [a for a in out if not spec.is_blocked(a)]


def _one_object(t, objects: list[str], held: set[str]) -> list[tuple[str, str]]:
    """``(candidate, object)`` of a one-object template: the objects its syntax line allows (held or not)."""
    need = t.held[0] if t.held else False
    away = t.room[0] if t.room else False
    return [(t.text.replace("OBJ", o), o) for o in objects
            if (not need or o in held) and (not away or o not in held)]


def _two_objects(t, objects: list[str], held: set[str]) -> list[tuple[str, str]]:
    """``(candidate, first object)`` of a two-object template: pairs its syntax line allows, one of them held
    (put/give/throw X, unlock/attack/tie with X)."""
    n1, n2 = (t.held + (False, False))[:2]
    r1, r2 = (t.room + (False, False))[:2]
    out = []
    for o1 in objects:
        if (n1 and o1 not in held) or (r1 and o1 in held):
            continue
        for o2 in objects:
            if (o1 != o2 and (not n2 or o2 in held) and (not r2 or o2 not in held)
                    and (o1 in held or o2 in held)):
                out.append((t.text.replace("OBJ", o1, 1).replace("OBJ", o2, 1), o1))
    return out


def pair_objects(outcomes: list[Outcome], objects: list[str], held: set[str], grammar: Grammar, obs: str,
                 template_of: dict[str, str], max_held: int, max_other: int) -> list[str]:
    """Objects for two-object templates: up to ``max_held`` held ones and ``max_other`` others, those the last
    observation mentions first (what play is about now), then for the others those a one-object action
    (``outcomes``) changed the world with (takeable, openable, people...). Names the parser mostly refused in
    one-object templates (ambiguous, out of reach) are left out."""
    active: set[str] = set()
    tried: dict[str, int] = {}
    refused: dict[str, int] = {}
    for o in outcomes:
        tpl = template_of.get(o.action, "")
        if tpl.count("OBJ") != 1:
            continue
        pre, post = tpl.split("OBJ")
        name = o.action[len(pre): len(o.action) - len(post)]
        tried[name] = tried.get(name, 0) + 1
        if o.status == "invalid" and not o.signature:  # a parser failure (default refusals are signed)
            refused[name] = refused.get(name, 0) + 1
        elif o.status == "valid" and o.changed:
            active.add(name)
    usable = [o for o in objects if refused.get(o, 0) <= 0.5 * tried.get(o, 0) or o in active]
    said = {grammar.key(t) for t in words(obs)}

    def fresh(o: str) -> bool:  # not in the last observation
        return grammar.key(o.split()[-1]) not in said

    mine = sorted((o for o in usable if o in held), key=fresh)[:max_held]
    other = sorted((o for o in usable if o not in held), key=lambda o: (fresh(o), o not in active))
    return mine + other[:max_other]


def ranked(candidates: list[str], grammar: Grammar, said: set[str], template_of: dict[str, str],
           object_of: dict[str, str], lead: dict[tuple[str, str | None], int] | None = None) -> list[str]:
    """``candidates`` by their template: no-object ones first, then by how often players type the verb or a
    synonym running the same routine, a verb the state's text uses (a spell in the spell book, "fill") counted
    as a common one, and divided by (1 + k)^2 for a verb's k-th template with as many objects, fewest words
    first (``look at``, ``look in``, ``look under``, ... share one count). Before that, candidates by the
    level ``lead`` gives their verb and first object (lowest first; those it does not name last). Stable: a
    template's objects keep their order."""
    lead = lead or {}
    weight: dict[str, float] = {}
    nth: dict[tuple[str, int], int] = {}
    for t in sorted(grammar.templates, key=lambda t: len(t.text.split())):
        verb = grammar.key(t.text.split()[0])
        k = nth[(verb, t.holes)] = nth.get((verb, t.holes), -1) + 1
        n = max(t.popularity(), _SAID_VERB_USAGE) if verb in said else t.popularity()
        weight[t.text] = n / (1 + k) ** 2

    def rank(a: str) -> tuple[bool, int, float]:
        tpl = template_of.get(a, a)
        return ("OBJ" in tpl, lead.get((grammar.key(a.split()[0]), object_of.get(a)), 9), -weight.get(tpl, 0.0))
    return sorted(candidates, key=rank)
