import pytest

from geostance.data import read_labeled, read_tweeteval
from geostance.errors import DataError

HEADER = "sentence_id,text,target,stance,source\n"


def write(tmp_path, content, name="rows.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_reads_several_files_and_records_origin(tmp_path):
    a = write(tmp_path, HEADER + "s1,Russia won.,Russia,favor,test\n", "a.csv")
    b = write(tmp_path, HEADER + "s2,India lost.,India,against,test\n", "b.csv")
    frame = read_labeled([a, b], countries={"Russia", "India"})
    assert list(frame["sentence_id"]) == ["s1", "s2"]
    assert list(frame["file"]) == [str(a), str(b)]


@pytest.mark.parametrize(
    "content, message",
    [
        ("sentence_id,text,target\ns1,x,Russia\n", "missing column\\(s\\) stance, source"),
        (HEADER + "s1,Russia won.,Russia,favor,t\ns2,,Russia,favor,t\n", "rows.csv:3: empty text"),
        (
            HEADER + "s1,Russia won.,Russia,positive,t\n",
            "rows.csv:2: stance 'positive' is not one of",
        ),
        (HEADER + "s1,Narnia won.,Narnia,favor,t\n", "rows.csv:2: unknown target 'Narnia'"),
        (
            HEADER + "s1,Russia won.,Russia,favor,t\ns1,Russia won.,Russia,against,t\n",
            "rows.csv:3: conflicting duplicate of .*rows.csv:2",
        ),
        (
            HEADER + "s1,Russia won.,Russia,favor,t\ns1,Russia won.,Russia,favor,t\n",
            "rows.csv:3: duplicate of",
        ),
        (
            HEADER + "s1,Russia won.,Russia,favor,t\ns1,Russia lost.,India,favor,t\n",
            "'s1' has different texts",
        ),
        ("", "the file is empty"),
    ],
)
def test_invalid_files_name_file_and_line(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError, match=message):
        read_labeled([path], countries={"Russia", "India"})


def test_conflict_across_files_is_caught(tmp_path):
    a = write(tmp_path, HEADER + "s1,Russia won.,Russia,favor,t\n", "a.csv")
    b = write(tmp_path, HEADER + "s1,Russia won.,Russia,neutral,t\n", "b.csv")
    with pytest.raises(DataError, match="b.csv:2: conflicting duplicate of .*a.csv:2"):
        read_labeled([a, b])


@pytest.mark.parametrize(
    "content, message",
    [(b"sentence_id,text\n\xff\xfe\n", "not UTF-8"), (b"\x00\x01\x02binary", "binary data")],
)
def test_undecodable_files(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        read_labeled([write(tmp_path, content, mode="wb")])


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_labeled([tmp_path / "absent.csv"])


def make_tweeteval(root, target="abortion", split="train", texts=None, labels=None):
    folder = root / target
    folder.mkdir(parents=True, exist_ok=True)
    texts = texts or ["I stand for life #SemST", "My body my choice #SemST", "Lunch time #SemST"]
    labels = labels or ["1", "2", "0"]
    (folder / f"{split}_text.txt").write_text("\n".join(texts) + "\n")
    (folder / f"{split}_labels.txt").write_text("\n".join(labels) + "\n")


def test_tweeteval_layout_maps_labels_and_strips_tag(tmp_path):
    make_tweeteval(tmp_path)
    make_tweeteval(tmp_path, target="climate", texts=["Act now #SemST"], labels=["2"])
    frame = read_tweeteval(tmp_path, ["train"])
    assert list(frame["stance"]) == ["against", "favor", "neutral", "favor"]
    assert list(frame["target"]) == ["abortion"] * 3 + ["climate"]
    assert frame["text"][0] == "I stand for life"
    assert frame["sentence_id"].is_unique


def test_tweeteval_errors(tmp_path):
    with pytest.raises(DataError, match="no TweetEval stance folder"):
        read_tweeteval(tmp_path / "absent", ["train"])
    make_tweeteval(tmp_path, labels=["1", "2"])
    with pytest.raises(DataError, match="3 texts but 2 labels"):
        read_tweeteval(tmp_path, ["train"])
    make_tweeteval(tmp_path, labels=["1", "2", "9"])
    with pytest.raises(DataError, match="train_labels.txt:3: label '9'"):
        read_tweeteval(tmp_path, ["train"])
