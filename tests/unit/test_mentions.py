import pytest

from geostance.errors import DataError
from geostance.mentions import OTHER_TOKEN, TARGET_TOKEN, Gazetteer, split_sentences


def test_names_demonyms_capitals_and_possessives(gazetteer):
    text = "Russia's envoy met Pakistani officials in Beijing."
    assert gazetteer.targets(text) == ["Russia", "Pakistan", "China"]


def test_hyphenated_compound_names_both_countries(gazetteer):
    assert gazetteer.targets("The Pakistan-Russia thaw and Indian-Chinese talks.") == [
        "Pakistan",
        "Russia",
        "India",
        "China",
    ]


def test_alias_naming_two_countries(gazetteer):
    assert gazetteer.targets("CPEC projects stalled.") == ["China", "Pakistan"]


@pytest.mark.parametrize(
    "text",
    [
        "We ate off fine china plates.",  # lowercase common noun
        "Ships crossed the Indian Ocean.",  # not_country phrase swallows the demonym
        "Indianapolis hosted the race.",  # alias inside a longer word
        "Russiagate was a headline.",
    ],
)
def test_no_false_hits(gazetteer, text):
    assert gazetteer.targets(text) == []


def test_mask_replaces_target_and_other_countries(gazetteer):
    masked = gazetteer.mask("Moscow praised Islamabad, not New Delhi.", "Pakistan")
    assert masked == f"{OTHER_TOKEN} praised {TARGET_TOKEN}, not {OTHER_TOKEN}."


def test_mask_compound_alias_counts_as_target(gazetteer):
    assert gazetteer.mask("CPEC helps.", "China") == f"{TARGET_TOKEN} helps."


def test_gazetteer_roundtrips_through_pickle(gazetteer):
    import pickle

    copy = pickle.loads(pickle.dumps(gazetteer))
    assert copy == gazetteer and copy.targets("Kremlin") == ["Russia"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("alias,country\nRussia,Russia\n", "missing columns kind"),
        ("alias,country,kind\nRussia,Russia,planet\n", ":2: kind 'planet'"),
        (
            "alias,country,kind\nRussia,Russia,name\nRussia,Russia,name\n",
            ":3: alias 'Russia' listed twice",
        ),
        ("alias,country,kind\nIndian Ocean,India,not_country\n", "only not_country rows"),
        ("alias,country,kind\n", "has no rows"),
    ],
)
def test_bad_gazetteer_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "countries.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        Gazetteer.from_csv(path)


def test_split_sentences_keeps_abbreviations_and_initials():
    text = "The U.S. envoy met Gen. Bajwa. Then S. M. Qureshi spoke! Why?\n\nA new\nparagraph."
    assert split_sentences(text) == [
        "The U.S. envoy met Gen. Bajwa.",
        "Then S. M. Qureshi spoke!",
        "Why?",
        "A new paragraph.",
    ]


def test_split_sentences_on_closing_quotes():
    assert split_sentences("He said “no.” She left.") == ["He said “no.”", "She left."]


def test_trie_pattern_matches_like_a_longest_first_alternation():
    import random
    import re

    aliases = ["India", "Indian", "Indian Ocean", "Indo", "Indo-Pacific", "US", "U.S.", "USA", "Us"]
    gazetteer = Gazetteer(
        {a: () if a in ("Indian Ocean", "Indo-Pacific") else ("X",) for a in aliases}
    )
    flat = re.compile(
        r"(?<!\w)(?:"
        + "|".join(re.escape(a) for a in sorted(aliases, key=lambda a: (-len(a), a)))
        + r")(?!\w)"
    )
    pieces = [*aliases, " ", "-", "n", "s", "'s", "Ocean", "Oceanic", ".", "A", "Pacific"]
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        assert [m.group(0) for m in gazetteer._pattern.finditer(text)] == [
            m.group(0) for m in flat.finditer(text)
        ], text


def test_back_references_resolve_to_exactly_two_countries_named_just_before():
    from geostance.classify import _sentence_rows
    from geostance.mentions import Gazetteer, split_sentences
    from tests.conftest import ROOT

    gazetteer = Gazetteer.from_csv(ROOT / "data" / "countries.csv")

    def resolved(text: str, resolve: bool = True) -> list[tuple[int, str, str]]:
        rows = _sentence_rows(gazetteer, 0, split_sentences(text), resolve)
        return [(index, target, read) for _, index, _, target, read, was in rows if was]

    two = "Pakistan and India reopened the corridor. Both countries deserve credit for it."
    read = "Pakistan and India deserve credit for it."
    assert resolved(two) == [(2, "Pakistan", read), (2, "India", read)]
    assert resolved(two, resolve=False) == []
    assert resolved("China, Russia and Iran held drills. Both countries denied it.") == []
    assert resolved("Talks resumed on Tuesday. Both sides were cautious.") == []
    # A sentence that names a country is read as it is, back-reference or not.
    assert resolved("Japan and Korea met. Both sides thanked Beijing.") == []


@pytest.mark.parametrize(
    "text, clause",
    [
        ("The U.S. praised Pakistan, while India objected.", "ztargetz objected."),
        ('Critics said "ztargetz lied again"; officials disagreed.', 'Critics said "ztargetz lied again"'),
        ("Aid (mostly from ztargetz) arrived late.", "mostly from ztargetz"),
        ("Talks stalled - ztargetz walked out - and nothing moved.", "ztargetz walked out"),
        ("Delegates from Chile, ztargetz, and Peru attended.", "ztargetz"),
        ("ztargetz promised much, but delivered little.", "ztargetz promised much"),
        ("Although ztargetz signed, it never ratified.", "ztargetz signed"),
        # "yet" ends a clause only where it opens one
        ("Oil is cheap, yet ztargetz pays dearly.", "ztargetz pays dearly."),
        ("Peru won and yet ztargetz lost.", "ztargetz lost."),
        ("Yet ztargetz refused.", "ztargetz refused."),
        ("ztargetz fired yet another missile.", "ztargetz fired yet another missile."),
        ("ztargetz has yet to act, as Peru has.", "ztargetz has yet to act"),
        ("ztargetz is not yet ready.", "ztargetz is not yet ready."),
    ],
)
def test_clause_view_on_hard_punctuation(text, clause):
    from geostance.mentions import view_text

    assert view_text(text.replace("India", "ztargetz"), "clause").strip() == clause
