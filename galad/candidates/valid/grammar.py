"""Action templates and vocabulary read from the game itself.

Three sources, in order of preference for a game:

* Jericho's shipped grammar bindings, borrowed by game name (18 of the 25 annotated games; Jericho keys them
  by the story file's MD5, which the recompiled annotated builds do not match);
* the story file's own syntax table: Infocom/ZIL games keep a ``VERBS`` table of pointers, indexed by
  ``255 - verb number``, to blocks of 8-byte syntax lines ``[objects, prep1, prep2, find1, find2, loc1, loc2,
  action]``. The header does not point at it, so we find it: the one table for which every verb number in
  the dictionary points at a well-formed block;
* the Inform 6 grammar table (our demo game, and any Inform game): ``255 - verb number`` indexes a table of
  pointers to grammar-version-2 blocks (line count; per line an action word and 3-byte tokens ending in 15).

The dictionary gives the vocabulary: word-type flags tell nouns, verbs, adjectives, prepositions and
directions (ZIL ``PS?`` bits, or Inform's ``#dict_par1`` bits). The story file's bytes (header, z-strings,
dictionary entries) are read by :mod:`~galad.candidates.valid.zmachine`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from galad.candidates.valid.zmachine import GrammarError, Story, Word, find_table

__all__ = ["JERICHO_BINDINGS", "META_VERBS", "NO_EFFECT_ACTIONS", "Grammar", "GrammarError", "Template", "Word",
           "load_grammar", "verb_usage"]

log = logging.getLogger(__name__)

#: Registry name -> name of Jericho's bindings for the same game (the rest have none).
JERICHO_BINDINGS = {
    "ballyhoo": "ballyhoo", "cutthroats": "cutthroat", "enchanter": "enchanter", "hitchhiker": "hhgg",
    "hollywoodhijinx": "hollywood", "infidel": "infidel", "lurkinghorror": "lurking",
    "planetfall": "planetfall", "plunderedhearts": "plundered", "seastalker": "seastalker",
    "sherlock": "sherlock", "sorcerer": "sorcerer", "spellbreaker": "spellbrkr", "trinity": "trinity",
    "wishbringer": "wishbringer", "zork1": "zork1", "zork2": "zork2", "zork3": "zork3",
}  # fmt: skip

#: Verbs that talk to the interpreter, not the story (never candidates; generic, not per game).
META_VERBS = frozenset(
    "again g oops undo q quit restart restore save script unscript transcript verbose brief superbrief "
    "super superb score version verify $verify $ve diagnose notify pronouns places objects full fullscore "
    "hint hints help about credits info license copyright random recording replay daemons actions messages "
    "trace nouns routines scope showme showobj showverb purloin abstract tree gonear goto $ve $verify "
    "$random $command $debug $refresh $suspend #command #random #record #unrecord #comm #rand #reco #unre "
    "unspace space mode $quit $save $restore".split()
)

_DEFAULT_TEMPLATES_EXTRA = ("take all",)


def _is_meta(verb: str) -> bool:
    """A meta verb, also in its truncated dictionary form (``verbos``, ``unscri``)."""
    return verb in META_VERBS or (len(verb) >= 5 and any(m.startswith(verb) for m in META_VERBS))

#: Bare actions that only report (Jericho drops them from its templates as well).
NO_EFFECT_ACTIONS = frozenset("examine x look l i inventory invent gaze stare".split())


@dataclass(frozen=True)
class Template:
    """One action pattern: words with ``OBJ`` holes."""

    text: str
    """The pattern, e.g. ``put OBJ in OBJ``."""
    held: tuple[bool, ...] = ()
    """Per hole: the parser insists the object is already held (ZIL ``HAVE`` without ``TAKE``)."""
    room: tuple[bool, ...] = ()
    """Per hole: the parser only looks for the object in the room, not among what the player holds (ZIL
    ``ON-GROUND``/``IN-ROOM`` without ``HELD``/``CARRIED``: ``take``, ``climb``): a held object is refused."""
    action: tuple[int, ...] | None = None
    """The syntax line it matches, its action number last: ZIL ``(objects, prep1, prep2, loc1, loc2,
    action)``, Inform ``(action,)``; templates with the same number of objects and action number run the
    same routine, so only one is tried. None: unknown (never merged)."""
    usage: int = -1
    """How often players type the most used verb among the templates merged into this one (ClubFloyd counts,
    :func:`verb_usage`); -1: not counted yet (then its own verb's, see :meth:`popularity`)."""

    def popularity(self) -> int:
        """How often players type this template's verb or a merged synonym's."""
        return self.usage if self.usage >= 0 else verb_usage(self.text)

    @property
    def holes(self) -> int:
        return self.text.split().count("OBJ")


@dataclass
class Grammar:
    """What a candidate source needs to know about a game's language."""

    templates: list[Template]
    """Action patterns (no-object, one-object and two-object), meta verbs removed."""
    nouns: frozenset[str]
    """Dictionary words that name things."""
    adjectives: frozenset[str]
    """Dictionary words that qualify things (ZIL only; empty for Inform, whose names are all nouns)."""
    word_len: int
    """Characters the parser reads of a word (6 in V1-3, 9 in V4+)."""
    source: str
    """Where the templates came from: ``jericho``, ``zil`` or ``inform``."""
    examine: str = "examine"
    """The verb used to tell objects apart."""
    words: frozenset[str] = field(default_factory=frozenset)
    """Every dictionary word."""

    def key(self, token: str) -> str:
        """A token as the dictionary stores it."""
        return token[: self.word_len]


def verb_usage(action: str) -> int:
    """How often players typed the first word of ``action`` (ClubFloyd transcript counts shipped with
    Jericho; 0 without it): how a game's synonyms are named."""
    return _usage_fn()(action.split()[0]) if action else 0


def _pick(words: list[str], usage) -> str:
    full = [w for w in words if w and w[0].isalpha()]
    return max(full or words, key=lambda w: (usage(w), len(w)))


@functools.cache
def _usage_fn():
    try:
        from jericho.util import verb_usage_count  # installed data: verb counts from ClubFloyd transcripts

        return lambda w: verb_usage_count(w)
    except Exception:
        return lambda w: 0


# --------------------------------------------------------------------------------------------------
# ZIL (Infocom) games


#: ZIL syntax line as read from the table: (objects, prep1, prep2, loc1, loc2, action).
_Syntax = tuple[int, int, int, int, int, int]


# ZIL syntax location bits: SHAVE 2, SMANY 4, STAKE 8, SON-GROUND 16, SIN-ROOM 32, SCARRIED 64, SHELD 128
def _zil_held(loc: int) -> bool:
    """The parser refuses an object the player does not hold."""
    if loc & 2 and not loc & 8:  # HAVE without TAKE
        return True
    return bool(loc & 192) and not loc & 48  # searched only among what the player holds


def _zil_room(loc: int) -> bool:
    """The parser looks for the object only in the room (a held one is refused: "You already have that")."""
    return bool(loc & 48) and not loc & 192


def _zil_grammar(
    story: Story,
) -> tuple[list[Template], dict[int, list[str]], dict[int, list[_Syntax]], dict[int, list[str]]]:
    """Templates, verb number -> words, verb number -> syntax lines, preposition number -> words."""
    verbs, preps, dirs = _zil_words(story)
    table = find_table(story, sorted(verbs), functools.partial(_zil_block_ok, story.data))
    if table is None:
        raise GrammarError("no ZIL syntax table found")
    syntax = {num: _zil_lines(story.data, story.read_word(table + 2 * (255 - num))) for num in sorted(verbs)}
    usage = _usage_fn()
    prep_word = {n: _pick(ws, usage) for n, ws in preps.items()}
    templates: list[Template] = []
    for num in sorted(verbs):
        words = [w for w in verbs[num] if not _is_meta(w) and w[:1].isalpha()]
        if len(words) < len(verbs[num]) or not words:
            continue
        verb = _pick(words, usage)
        for line in syntax[num]:
            t = _zil_line_template(verb, line, prep_word)
            if t is not None:
                templates.append(t)
    for ws in dirs.values():
        templates.append(Template(_pick(ws, len)))
    return templates, verbs, syntax, preps


def _zil_words(story: Story) -> tuple[dict[int, list[str]], dict[int, list[str]], dict[int, list[str]]]:
    """The dictionary's verbs, prepositions and directions by number (``PS?`` word-type flags)."""
    entries, _ = story.dictionary()
    verbs: dict[int, list[str]] = {}
    preps: dict[int, list[str]] = {}
    dirs: dict[int, list[str]] = {}
    one_byte = len(entries[0][1].values) < 2 if entries else True
    for _, wd in entries:
        f, v = wd.flags, wd.values
        if not v:
            continue
        p1 = f & 3
        if f & 64:  # PS?VERB; its value is first when P1?VERB (1)
            verbs.setdefault(v[0] if p1 == 1 or one_byte else v[1], []).append(wd.text)
        if f & 8 and not one_byte:  # PS?PREPOSITION (P1? 0 puts it first)
            preps.setdefault(v[0] if p1 == 0 else v[1], []).append(wd.text)
        if f & 16:  # PS?DIRECTION (P1?DIRECTION = 3)
            dirs.setdefault(v[0] if p1 == 3 or one_byte else v[1], []).append(wd.text)
    return verbs, preps, dirs


def _zil_block_ok(d: bytes, p: int) -> bool:
    """A well-formed block of syntax lines at ``p``: a line count, then 8-byte lines of at most 2 objects."""
    if not 0 < p < len(d) - 9:
        return False
    c = d[p]
    if not 1 <= c <= 48 or p + 1 + 8 * c > len(d):
        return False
    return all(d[p + 1 + 8 * k] <= 2 for k in range(c))


def _zil_lines(d: bytes, p: int) -> list[_Syntax]:
    """The syntax lines of the block at ``p``, the fields of missing objects zeroed."""
    lines = []
    for k in range(d[p]):
        nobj, pr1, pr2, _f1, _f2, loc1, loc2, act = d[p + 1 + 8 * k : p + 9 + 8 * k]
        lines.append((nobj, pr1, pr2 if nobj >= 2 else 0, loc1 if nobj >= 1 else 0, loc2 if nobj >= 2 else 0, act))
    return lines


def _zil_line_template(verb: str, line: _Syntax, prep_word: dict[int, str]) -> Template | None:
    """The template of one syntax line (``verb [prep] OBJ [prep] OBJ``); None when a preposition has no word."""
    nobj, pr1, pr2, _loc1, _loc2, _act = line
    parts = [verb]
    if pr1:
        parts.append(prep_word.get(pr1, ""))
    if nobj >= 1:
        parts.append("OBJ")
    if nobj >= 2:
        if pr2:
            parts.append(prep_word.get(pr2, ""))
        parts.append("OBJ")
    return _zil_template(" ".join(parts), line) if all(parts) else None


def _annotate_from_zil(templates: list[Template], story: Story, word_len: int) -> list[Template]:
    """Borrowed templates with the held flags and action key of the story's own matching syntax line.

    A template ``verb [prep] OBJ [prep] OBJ`` matches the line of its verb with the same number of objects
    and the same prepositions; templates without a match are kept as they are. A bare verb that the story makes
    a synonym of a meta verb is dropped: plundered hearts' ``rescue`` is its ``save`` (stepping it writes a saved
    game into the working folder), while ``rescue OBJ`` is a story action.
    """
    try:
        _, verbs, syntax, preps = _zil_grammar(story)
    except GrammarError:
        return templates
    verb_num = {w: n for n, ws in verbs.items() for w in ws}
    prep_num = {w: n for n, ws in preps.items() for w in ws}
    out = []
    for t in templates:
        toks = t.text.split()
        num = verb_num.get(toks[0][:word_len])
        if t.holes == 0 and num is not None and any(_is_meta(w) for w in verbs[num]):
            continue
        if num is None or t.holes == 0:
            out.append(t)
            continue
        first = toks.index("OBJ")
        pre, mid = toks[1:first], toks[first + 1 :]
        mid = mid[: mid.index("OBJ")] if "OBJ" in mid else []
        if len(pre) > 1 or len(mid) > 1:
            out.append(t)
            continue
        pr1 = prep_num.get(pre[0][:word_len], -1) if pre else 0
        pr2 = prep_num.get(mid[0][:word_len], -1) if mid else 0
        line = next((ln for ln in syntax.get(num, []) if ln[0] == t.holes and ln[1] == pr1 and ln[2] == pr2), None)
        if line is None:
            out.append(t)
            continue
        out.append(_zil_template(t.text, line))
    return out


def _zil_template(text: str, line: _Syntax) -> Template:
    n = line[0]
    locs = (line[3], line[4])[:n]
    return Template(text, tuple(_zil_held(x) for x in locs), tuple(_zil_room(x) for x in locs), line)


# --------------------------------------------------------------------------------------------------
# Inform 6 games (grammar version 2)


_INFORM_DIRECTIONS = ("north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest",
                      "up", "down", "in", "out")


def _inform_grammar(story: Story) -> list[Template]:
    entries, _ = story.dictionary()
    addr2word = {a: wd.text for a, wd in entries}
    verbs: dict[int, list[str]] = {}
    for _, wd in entries:
        if wd.flags & 1 and len(wd.values) >= 1:  # verb; #dict_par2 = 255 - grammar index... stored as number
            verbs.setdefault(wd.values[0], []).append(wd.text)
    table = find_table(story, sorted(verbs), functools.partial(_inform_block_ok, story))
    if table is None:
        raise GrammarError("no Inform grammar table found")
    usage = _usage_fn()
    templates: list[Template] = []
    meta = {wd.values[0] for _, wd in entries if wd.flags & 3 == 3}  # #dict_par1 bit 1: a meta verb
    for num in sorted(verbs):
        if num in meta:
            continue
        # a verb's synonyms may include a meta-looking word ('undo' is the library's synonym of 'open')
        words = [w for w in verbs[num] if not _is_meta(w) and w[:1].isalpha()]
        if not words:
            continue
        verb = _pick(words, usage)
        for action, toks in _inform_lines(story, story.read_word(table + 2 * (255 - num))):
            t = _inform_line_template(verb, action, toks, addr2word)
            if t is not None:
                templates.append(t)
    known = {wd.text for _, wd in entries}
    return templates + [Template(w) for w in _INFORM_DIRECTIONS if w[:9] in known]


def _inform_lines(story: Story, p: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """``(action number, tokens)`` per line of a GV2 block, or raise ValueError."""
    d = story.data
    n = d[p]
    q = p + 1
    out = []
    for _ in range(n):
        action = story.read_word(q) & 0x3FF  # bit 10: reversed arguments (``give X Y``): the same routine
        q += 2
        toks = []
        while d[q] != 15:
            toks.append((d[q], story.read_word(q + 1)))
            q += 3
            if len(toks) > 12:
                raise ValueError
        q += 1
        out.append((action, toks))
    return out


def _inform_block_ok(story: Story, p: int) -> bool:
    if not 0 < p < len(story.data) - 4 or not 1 <= story.data[p] <= 40:
        return False
    try:
        _inform_lines(story, p)
    except (ValueError, IndexError):
        return False
    return True


def _inform_line_template(verb: str, action: int, toks: list[tuple[int, int]],
                          addr2word: dict[int, str]) -> Template | None:
    """The template of one grammar line: prepositions as words, nouns as ``OBJ`` (held for ``held`` and
    ``multiheld``); None for lines with numbers, topics or routines, or more than two objects."""
    parts, held, ok = [verb], [], True
    for typ, data in toks:
        kind = typ & 0x0F
        if typ & 0x10:  # a later alternative of a word group ('in'/'into'/...): keep the first
            continue
        if kind == 2:
            parts.append(addr2word.get(data, ""))
        elif kind == 1 and data in (0, 1, 2, 3, 4, 5, 6):
            parts.append("OBJ")
            held.append(data in (1, 3))  # held / multiheld
        else:
            ok = False  # numbers, topics, routines: not generated
    if ok and all(parts) and parts.count("OBJ") <= 2:
        return Template(" ".join(parts), tuple(held), action=(action,))
    return None


# --------------------------------------------------------------------------------------------------
# Jericho bindings


def _jericho_templates(bindings_name: str) -> list[Template]:
    from jericho import game_info

    found = [v for v in vars(game_info).values() if isinstance(v, dict) and v.get("name") == bindings_name]
    if not found:
        raise GrammarError(f"Jericho has no bindings named {bindings_name!r}")
    b = found[0]
    usage = _usage_fn()
    out = []
    for t in b["grammar"].split(";"):
        t = t.strip()
        if not t:
            continue
        toks = [_pick(tok.split("/"), usage) if "/" in tok else tok for tok in t.split()]
        if _is_meta(toks[0]):
            continue
        out.append(Template(" ".join(toks)))
    dirs = "north/south/west/east/northwest/southwest/northeast/southeast/up/down/enter/exit".split("/")
    if bindings_name in ("enchanter", "spellbrkr"):  # these parsers only know abbreviated diagonals
        dirs = [d for d in dirs if d[:5] not in ("north", "south") or len(d) == 5] + ["ne", "nw", "se", "sw"]
    return out + [Template(x) for x in dirs]


# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def load_grammar(story_file: str, game: str | None = None, prefer_jericho: bool = True) -> Grammar:
    """Read a game's templates and vocabulary.

    Args:
        story_file: path of the story file.
        game: registry name, to borrow Jericho's bindings for the games it knows.
        prefer_jericho: use Jericho's bindings where they exist (else the story's own syntax table).

    Raises:
        GrammarError: no grammar could be read.
    """
    try:
        story = Story(Path(story_file).read_bytes())
    except OSError as exc:
        raise GrammarError(f"cannot read story file {story_file}: {exc}") from exc
    entries, word_len = story.dictionary()
    words = frozenset(wd.text for _, wd in entries)
    if story.inform:
        nouns = frozenset(wd.text for _, wd in entries if wd.flags & 128)
        adjectives: frozenset[str] = frozenset()
    else:
        nouns = frozenset(wd.text for _, wd in entries if wd.flags & 128)
        adjectives = frozenset(wd.text for _, wd in entries if wd.flags & 32)
    source = ""
    templates: list[Template] = []
    if prefer_jericho and game in JERICHO_BINDINGS:
        try:
            templates, source = _jericho_templates(JERICHO_BINDINGS[game]), "jericho"
        except (GrammarError, ImportError) as exc:
            log.warning("%s: Jericho bindings unavailable (%s); reading the story's grammar", game, exc)
    if not templates:
        if story.inform:
            templates, source = _inform_grammar(story), "inform"
        else:
            templates, source = _zil_grammar(story)[0], "zil"
    elif not story.inform:
        templates = _annotate_from_zil(templates, story, word_len)
    templates += [Template(t) for t in _DEFAULT_TEMPLATES_EXTRA if t.split()[0][:word_len] in words]
    uniq = _one_per_action(templates)
    examine = next((v for v in ("examine", "x", "look at") if v.split()[0][:word_len] in words), "examine")
    log.info("%s: %d templates from %s, %d nouns", game or story_file, len(uniq), source, len(nouns))
    return Grammar(uniq, nouns, adjectives, word_len, source, examine, words)


def _one_per_action(templates: list[Template]) -> list[Template]:
    """Templates without duplicates and reporting-only bare actions, one per action routine and number of objects.

    Templates running the same action routine with the same number of objects behave alike (ZIL and Inform
    routines tell verbs apart by action number, not by the words typed): keep one, the one whose syntax line
    demands least (no "held" flag, so the parser also takes objects on the floor), then the verb players use
    most; it counts as popular as the most popular of them.
    """
    seen: set[str] = set()
    by_action: dict[tuple[int, int], int] = {}
    uniq: list[Template] = []
    for t in templates:
        if (t.holes == 0 and t.text in NO_EFFECT_ACTIONS) or t.text in seen:
            continue
        seen.add(t.text)
        if t.action is not None:
            key = (t.holes, t.action[-1])
            i = by_action.get(key)
            if i is not None:
                usage = max(uniq[i].popularity(), t.popularity())
                uniq[i] = dataclasses.replace(t if _demand(t) < _demand(uniq[i]) else uniq[i], usage=usage)
                continue
            by_action[key] = len(uniq)
        uniq.append(t)
    return uniq


def _demand(t: Template) -> tuple[int, int]:
    """How much a template's syntax line demands (held and room flags), then how rarely players type its verb."""
    return (sum(t.held) + sum(t.room), -verb_usage(t.text))
