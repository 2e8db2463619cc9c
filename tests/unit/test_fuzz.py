"""Property-based fuzzing: arbitrary unicode and bytes never raise anything but the project's own
error, and classification does not depend on how documents are chunked."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geostance.batch import read_documents
from geostance.errors import GeostanceError
from geostance.mentions import split_sentences

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text that looks like commentary often enough to reach the interesting paths.
pieces = st.sampled_from(
    ["Russia", "U.S.", "Pakistan's", "!!!", "...", "?", "\n\n", " ", "“", "”", "(", ")", "Mr.",
     "India-China", "a", "Z", "3.5", "\x00", "\ufeff", "\u2028", "é"]
)  # fmt: skip
texts = st.one_of(st.text(max_size=300), st.lists(pieces, max_size=60).map("".join))


@FUZZ
@given(texts)
def test_split_sentences_keeps_every_non_space_character(text):
    sentences = split_sentences(text)
    assert all(s == s.strip() and s for s in sentences)
    assert "".join("".join(sentences).split()) == "".join(text.split())


@FUZZ
@given(texts)
def test_gazetteer_mentions_are_in_bounds_and_mask_is_total(gazetteer, text):
    mentions = gazetteer.find(text)
    assert all(text[m.start : m.end] == m.alias for m in mentions)
    assert all(a.end <= b.start for a, b in zip(mentions, mentions[1:], strict=False))
    for target in gazetteer.targets(text):
        assert gazetteer.targets(gazetteer.mask(text, target)) == []


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".jsonl", ".txt"]))
def test_readers_raise_only_their_own_error(tmp_path_factory, raw, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(raw)
    try:
        for chunk in read_documents(str(path), chunk_size=3):
            assert list(chunk.columns) == ["document", "text"]
            assert all(isinstance(t, str) for t in chunk["text"])
    except GeostanceError:
        pass


# A bare carriage return inside an unquoted field is not CSV (RFC 4180), and NUL is refused as
# binary data by design; every other character must come back as pandas reads it.
cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=20
)


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=1, max_size=3), min_size=1, max_size=8))
def test_csv_reader_reads_what_pandas_reads(tmp_path_factory, rows):
    width = max(len(r) for r in rows)
    frame = pd.DataFrame([r + [""] * (width - len(r)) for r in rows])
    frame.columns = ["text", *[f"c{i}" for i in range(1, width)]]
    path = tmp_path_factory.mktemp("csv") / "docs.csv"
    frame.to_csv(path, index=False)
    expected = pd.read_csv(path, dtype=str, keep_default_na=False)["text"].tolist()
    try:
        read = pd.concat(list(read_documents(str(path), chunk_size=2)), ignore_index=True)
    except GeostanceError as error:
        assert expected == [], error
        return
    assert read["text"].tolist() == expected


@pytest.fixture(scope="module")
def model(trained):
    from geostance import load_model

    return load_model(trained["model"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(documents=st.lists(texts, min_size=1, max_size=6), size=st.integers(1, 4))
def test_classify_is_the_same_whatever_the_chunk_size(model, documents, size):
    from geostance.batch import classify_documents

    frame = pd.DataFrame({"document": range(len(documents)), "text": documents})
    chunks = [frame.iloc[i : i + size] for i in range(0, len(frame), size)]
    parts = [m for m, _, _ in classify_documents(model, chunks, summary=False)]
    whole = next(classify_documents(model, [frame], summary=False))[0]
    pd.testing.assert_frame_equal(
        pd.concat(parts, ignore_index=True), whole.reset_index(drop=True), check_dtype=False
    )


CORPUS = [
    "Pakistan's economy is in shambles.",
    "ΣΑΣ İstanbul ǅ straße 3.5%",
    "x" * 60,
    "",
    "a b a b a",
]


@pytest.fixture(
    scope="module",
    params=[("char_wb", (2, 5)), ("word", (1, 2)), ("word", (1, 3)), ("word", (2, 3))],
)
def vectorizer(request):
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer, ngram_range = request.param
    pattern = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    return TfidfVectorizer(
        analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, **pattern
    ).fit(CORPUS)


@FUZZ
@given(texts=st.lists(st.one_of(texts, st.text(min_size=50, max_size=400)), min_size=1, max_size=6))
@example(texts=["b a", "b", "a", "", "a b", "a"])  # n-grams across texts' borders would count
def test_tfidf_blocks_equal_scikit_learns_matrix(vectorizer, texts):
    """Char n-grams come from a per-word cache, word n-grams from all texts' tokens at once
    (none may span two texts): both must give scikit-learn's matrix exactly."""
    from geostance.linear import TfidfBlock

    block = TfidfBlock(
        "block", vectorizer.analyzer, vectorizer.ngram_range, True, vectorizer.token_pattern,
        vectorizer.get_feature_names_out(), vectorizer.idf_,
    )  # fmt: skip
    for _ in range(2):  # cold cache, then warm
        ours, theirs = block.transform(texts), vectorizer.transform(texts)
        assert ours.shape == theirs.shape and ours.nnz == theirs.nnz
        assert abs(ours - theirs).max() < 1e-12 if ours.nnz else True


@FUZZ
@given(
    texts=st.lists(st.one_of(texts, st.text(min_size=50, max_size=400)), min_size=1, max_size=8),
    spec=st.sampled_from([("char_wb", (2, 5)), ("word", (1, 2)), ("word", (1, 3))]),
    min_df=st.integers(1, 2),
)
@example(texts=["b a", "b", "a", "", "a b", "a"], spec=("word", (1, 2)), min_df=2)
def test_fitted_tfidf_blocks_equal_scikit_learns_vectorizer(texts, spec, min_df):
    """Training fits TF-IDF with `linear.fit_block`: vocabulary, idf and matrix must be those
    of scikit-learn's TfidfVectorizer, or both must refuse an empty vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from geostance.linear import fit_block

    analyzer, ngram_range = spec
    pattern = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    vectorizer = TfidfVectorizer(
        analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, min_df=min_df, **pattern
    )
    try:
        theirs = vectorizer.fit_transform(texts)
    except ValueError:
        with pytest.raises(ValueError):
            fit_block(texts, min_df, name="b", analyzer=analyzer, ngram_range=ngram_range,
                      sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")  # fmt: skip
        return
    block, ours = fit_block(
        texts, min_df, name="b", analyzer=analyzer, ngram_range=ngram_range,
        sublinear_tf=True, token_pattern=r"(?u)\b\w+\b",
    )  # fmt: skip
    assert block.terms == vectorizer.get_feature_names_out().tolist()
    assert abs(block.idf - vectorizer.idf_).max() < 1e-12
    assert ours.shape == theirs.shape and ours.nnz == theirs.nnz
    assert abs(ours - theirs).max() < 1e-12 if ours.nnz else True
