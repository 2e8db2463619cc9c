"""Sentence splitting and country-mention detection driven by a gazetteer.

The gazetteer maps surface forms (names, short forms, demonyms, capitals, governments, leaders)
to canonical country names. Matching is case-sensitive, so "china plates" and "a turkey dinner"
are not mentions, and longest-match-first, so a `not_country` phrase such as "Indian Ocean" or
"Michael Jordan" swallows the country word inside it.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from geostance.errors import DataError

TARGET_TOKEN = "ztargetz"
OTHER_TOKEN = "zotherz"

KINDS = ("name", "short", "demonym", "capital", "government", "leader", "official", "not_country")

# A full stop after these does not end a sentence ("U.S. officials", "Gen. Bajwa").
_ABBREVIATIONS = frozenset(
    "u.s u.k u.n e.u u.s.a mr mrs ms dr gen lt col maj capt sgt adm st no vs etc e.g i.e "
    "jan feb mar apr jun jul aug sep sept oct nov dec prof sen rep gov pres amb inc ltd co "
    "jr sr".split()
)
# Possessive runs that start only at the run's first mark keep the scan linear on "!!!!...".
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]++[\"'”’)\]]*+(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Mention:
    """One country mention: the span [start, end) of `text` and the countries it names."""

    countries: tuple[str, ...]
    start: int
    end: int
    alias: str


class Gazetteer:
    """Alias -> countries table compiled into one longest-match-first regular expression.

    `aliases` maps each surface form to the canonical countries it names: one for most, two for
    compounds such as "CPEC", none for `not_country` phrases.
    """

    def __init__(self, aliases: dict[str, tuple[str, ...]]):
        if not aliases:
            raise ValueError("a gazetteer needs at least one alias")
        self.aliases = dict(aliases)
        # \w on both sides keeps "Indianapolis" and "Pakistani" apart from "India" and "Pakistan";
        # hyphens and apostrophes are boundaries, so "Pakistan-Russia" and "Russia's" match.
        self._pattern = re.compile(rf"(?<!\w){_trie_pattern(self.aliases)}(?!\w)")
        # A sentence is searched once to list its targets and again to mask it for each of them,
        # after the rest of its chunk (500 documents, some 5,000 sentences) has been searched.
        self._find = lru_cache(maxsize=16_384)(self._search)

    @classmethod
    def from_csv(cls, path: str | Path) -> Gazetteer:
        """Read `alias,country,kind` rows; `country` may hold several names joined by ';'."""
        path = Path(path)
        aliases: dict[str, tuple[str, ...]] = {}
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                missing = {"alias", "country", "kind"} - set(reader.fieldnames or [])
                if missing:
                    raise DataError(f"{path}: missing columns {', '.join(sorted(missing))}")
                for row in reader:
                    where = f"{path}:{reader.line_num}"
                    alias, kind = row["alias"].strip(), row["kind"].strip()
                    countries = tuple(c.strip() for c in row["country"].split(";") if c.strip())
                    if not alias:
                        raise DataError(f"{where}: empty alias")
                    if kind not in KINDS:
                        raise DataError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
                    if (kind == "not_country") != (not countries):
                        raise DataError(f"{where}: only not_country rows have no country")
                    if alias in aliases:
                        raise DataError(f"{where}: alias {alias!r} listed twice")
                    aliases[alias] = countries
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read gazetteer ({exc.strerror})") from None
        if not aliases:
            raise DataError(f"{path}: the gazetteer has no rows")
        return cls(aliases)

    @property
    def countries(self) -> frozenset[str]:
        return frozenset(c for names in self.aliases.values() for c in names)

    @property
    def digest(self) -> str:
        """SHA-256 of the alias table, recorded in model metadata."""
        rows = "\n".join(f"{a}\t{';'.join(c)}" for a, c in sorted(self.aliases.items()))
        return hashlib.sha256(rows.encode("utf-8")).hexdigest()

    def find(self, text: str) -> list[Mention]:
        """Every country mention in `text`, in order; `not_country` phrases are dropped."""
        return list(self._find(text))

    def _search(self, text: str) -> tuple[Mention, ...]:
        found = []
        for match in self._pattern.finditer(text):
            countries = self.aliases[match.group(0)]
            if countries:
                found.append(Mention(countries, match.start(), match.end(), match.group(0)))
        return tuple(found)

    def targets(self, text: str) -> list[str]:
        """The distinct countries `text` mentions, in order of first mention."""
        seen: dict[str, None] = {}
        for mention in self.find(text):
            seen.update(dict.fromkeys(mention.countries))
        return list(seen)

    def mask(self, text: str, target: str) -> str:
        """Replace mentions of `target` by one placeholder and of any other country by another.

        This lets one model learn "praise of X" once for every X instead of once per country.
        """
        pieces, last = [], 0
        for mention in self.find(text):
            token = TARGET_TOKEN if target in mention.countries else OTHER_TOKEN
            pieces += [text[last : mention.start], token]
            last = mention.end
        pieces.append(text[last:])
        return "".join(pieces)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Gazetteer) and self.aliases == other.aliases

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Gazetteer({len(self.aliases)} aliases, {len(self.countries)} countries)"

    def __getstate__(self) -> dict:
        return {"aliases": self.aliases}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["aliases"])


def _trie_pattern(words) -> str:
    """One regex for many literals, factored by common prefix ("India(?:n(?: Ocean)?)?").

    Python's engine tries the branches of a flat alternation one by one at every position; a
    trie tries one character at a time. Longer continuations come first and every group is
    greedy, so the longest alias that fits wins, as with a length-sorted alternation.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict) -> str:
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a word may end here: the rest is optional
            return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
        return body

    return f"(?:{render(trie)})"


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences.

    Blank lines end paragraphs; single line breaks are folded into spaces (hard-wrapped text).
    A sentence ends at . ! or ? followed by space and a capital or digit, except after a known
    abbreviation or a single-letter initial.
    """
    sentences = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            space = paragraph.rfind(" ", start, match.start())  # the word before: no re-slicing
            word = paragraph[max(space + 1, start) : match.start()].lstrip("\"'“‘([").lower()
            if match.group(0) == "." and (word in _ABBREVIATIONS or len(word) == 1):
                continue
            sentences.append(paragraph[start : match.end()].strip())
            start = match.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return [s for s in sentences if s]


VIEWS = ("sentence", "clause", "window", "left", "right")
# A clause ends at punctuation that separates clauses or at a contrastive conjunction, so
# "Seoul kept its word while Pyongyang fired yet another missile" is two clauses. "Yet" is one
# only where it opens a clause (", yet", "and yet", a sentence's first word), not in "yet
# another", "has yet to" or "not yet".
_CLAUSE_BREAK = re.compile(
    r"[,;:()\[\]\u2013\u2014]|\s-\s|\b(?:while|but|whereas|although|though)\b"
    r"|(?:^|(?<![\w\s])|\band\s)\s*yet\b",
    re.IGNORECASE,
)
_WINDOW_BREAK = " zbreakz "  # between two mentions' windows, so no n-gram spans them


def view_text(masked: str, view: str, window: int = 5) -> str:
    """The part of a masked sentence (targets as TARGET_TOKEN) that one feature view reads.

    sentence: all of it; clause: the clauses holding the target; window / left / right: the
    `window` words around, before or after each target mention. Words before a mention and
    after it play different roles ("X bombed Y" and "Y was bombed by X"), hence left and right.
    """
    if view == "sentence":
        return masked
    if view == "clause":
        return " ".join(c for c in _CLAUSE_BREAK.split(masked) if TARGET_TOKEN in c)
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    words = masked.split()
    spans = []
    for i, word in enumerate(words):
        if TARGET_TOKEN in word:
            low = i - window if view in ("window", "left") else i + 1
            high = i + window + 1 if view in ("window", "right") else i
            spans.append(" ".join(words[max(low, 0) : high]))
    return _WINDOW_BREAK.join(spans)


# A sentence that names no country but refers back to exactly two ("both countries", "the two
# sides") is about the two countries the sentence before it named.
_BACK_REFERENCE = re.compile(
    r"\b(?:both|the two) (?:countries|sides|neighbours|neighbors|nations|capitals|governments)\b",
    re.IGNORECASE,
)


def back_reference(sentence: str) -> re.Match | None:
    """The phrase by which `sentence` refers back to two countries, if any."""
    return _BACK_REFERENCE.search(sentence)
