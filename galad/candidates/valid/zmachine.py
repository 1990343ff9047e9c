"""Reading a Z-machine story file: its header, z-strings, the dictionary, and tables the header does not point at.

Just what :mod:`~galad.candidates.valid.grammar` needs to read a game's templates and vocabulary from the story
file itself: 16-bit words, z-encoded text (alphabets A0 and A2, ZSCII escapes), the dictionary's entries with
their word-type flags, and a search for a table of verb-block pointers.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from galad.errors import GaladError


class GrammarError(GaladError):
    """A story file's grammar or dictionary could not be read."""


@dataclass
class Word:
    """One dictionary entry."""

    text: str
    """The word as stored (truncated to the dictionary's resolution)."""
    flags: int
    """Word-type flags byte."""
    values: tuple[int, ...]
    """The data bytes after the flags."""


_A0 = "abcdefghijklmnopqrstuvwxyz"
_A2 = " \n0123456789.,!?_#'\"/\\-:()"


class Story:
    """A story file's bytes, read as the Z-machine does.

    Raises:
        GrammarError: the bytes are not a Z-machine story file.
    """

    def __init__(self, data: bytes):
        if len(data) < 64 or data[0] not in (1, 2, 3, 4, 5, 6, 7, 8):
            raise GrammarError("not a Z-machine story file")
        self.data = data
        self.version = data[0]
        self.inform = bool(re.fullmatch(rb"6\.\d\d", data[0x3C:0x40]))
        """Compiled by Inform 6 (its version in the header), else by Infocom's ZIL."""

    def read_word(self, a: int) -> int:
        """The 16-bit big-endian word at address ``a`` (0 outside the file)."""
        d = self.data
        return (d[a] << 8) | d[a + 1] if 0 <= a and a + 1 < len(d) else 0

    def zstring(self, a: int, nbytes: int) -> str:
        """The z-encoded text of ``nbytes`` bytes at ``a`` (alphabets A0 and A2, ZSCII escapes; no
        abbreviations, which dictionary words do not use)."""
        zs: list[int] = []
        for i in range(0, nbytes, 2):
            x = self.read_word(a + i)
            zs += [(x >> 10) & 31, (x >> 5) & 31, x & 31]
        out, shift, i = [], 0, 0
        while i < len(zs):
            c = zs[i]
            if c in (4, 5):
                shift = c
                i += 1
                continue
            if c == 0:
                out.append(" ")
            elif c >= 6:
                if shift == 5:
                    if c == 6 and i + 2 < len(zs):
                        out.append(chr((zs[i + 1] << 5) | zs[i + 2]))
                        i += 3
                        shift = 0
                        continue
                    out.append(_A2[c - 6])
                else:
                    out.append(_A0[c - 6])
            shift = 0
            i += 1
        return "".join(out).strip()

    def dictionary(self) -> tuple[list[tuple[int, Word]], int]:
        """``([(address, entry)], characters the parser reads of a word)``."""
        d = self.data
        base = self.read_word(0x08)
        nsep = d[base]
        p = base + 1 + nsep
        elen = d[p]
        n = struct.unpack(">h", d[p + 1 : p + 3])[0]
        p += 3
        tl = 4 if self.version <= 3 else 6
        entries = []
        for i in range(abs(n)):
            a = p + i * elen
            entries.append((a, Word(self.zstring(a, tl), d[a + tl], tuple(d[a + tl + 1 : a + elen]))))
        return entries, (6 if self.version <= 3 else 9)


def find_table(story: Story, numbers: list[int], block_ok: Callable[[int], bool]) -> int | None:
    """Address T where ``T-->(255 - n)`` is a well-formed block for every verb number n."""
    if not numbers:
        return None
    top = 255 - min(numbers)
    probe = numbers[:6]
    d = story.data
    for a in range(0x40, len(d) - 2 * top - 2):
        if all(block_ok(story.read_word(a + 2 * (255 - v))) for v in probe) and all(
            block_ok(story.read_word(a + 2 * (255 - v))) for v in numbers
        ):
            return a
    return None
