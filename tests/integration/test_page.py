"""`geostance report`: the analyst's HTML page, escaped, checked in a real browser."""

import re
import shutil
import subprocess

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.integration.test_cli import one_error_line, run

SAMPLE = ROOT / "data" / "raw" / "sample_corpus.csv"


@pytest.fixture
def documents(tmp_path):
    path = tmp_path / "docs.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "outlet": ["Ledger", "Review", "Ledger"],
            "date": ["2025-01-03", "2025-02-11", "2025-02-20"],
            "text": [
                "Pakistan wisely deepened ties with Russia. Russia failed again.",
                'Washington <script>alert("x")</script> lectured its partners & "allies".',
                "Pakistan failed its farmers again.",
            ],
        }
    ).to_csv(path, index=False)
    return path


def page(capsys, trained, source, out, *extra):
    status, stdout, err = run(
        capsys, "report", source, "--model", trained["model"], "--out", out, *extra
    )
    assert status == 0, err
    return out.read_text(encoding="utf-8")


def test_untrusted_text_comes_out_escaped(trained, capsys, tmp_path):
    mentions = tmp_path / "m.csv"
    pd.DataFrame(
        {
            "document": ['<img src=x onerror="y">'],
            "sentence": [1],
            "text": ['Russia <script>alert("x")</script> lied & "spun" again.'],
            "target": ["Russia"],
            "stance": ["against"],
            "p_favor": [0.1],
            "p_against": [0.8],
            "p_neutral": [0.1],
        }
    ).to_csv(mentions, index=False)
    html = page(capsys, trained, mentions, tmp_path / "r.html")
    assert "<script>alert" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&amp; &#34;spun&#34;" in html and "&lt;img src=x onerror=&#34;y&#34;&gt;" in html
    assert len(re.findall(r"<script>", html)) == 1  # the page's own filter script only


def test_countries_net_stance_groups_and_months(trained, capsys, documents, tmp_path):
    html = page(
        capsys, trained, documents, tmp_path / "r.html", "--id-column", "id",
        "--group-column", "outlet", "--date-column", "date",
    )  # fmt: skip
    assert 'id="groups"' in html and 'id="months"' in html
    assert html.count('<section class="country"') == len(set(re.findall(r'data-country="([^"]+)"', html)))
    assert "<svg" in html
    assert not re.search(r'(src|href)="?(https?:)?//', html) and "<link" not in html  # offline


def test_a_mentions_table_is_read_as_it_is(trained, capsys, documents, tmp_path):
    mentions = tmp_path / "m.csv"
    status, _, err = run(capsys, "classify", "--model", trained["model"], "--input", documents,
                         "--output", mentions, "--quiet")  # fmt: skip
    assert status == 0, err
    html = page(capsys, trained, mentions, tmp_path / "r.html")
    assert f"<b>{len(pd.read_csv(mentions))}</b>country mentions" in html


def test_net_stance_interval_resamples_documents():
    from geostance.page import _countries

    one = pd.DataFrame({"target": ["X"] * 10, "document": ["d"] * 10, "stance": ["favor"] * 10})
    many = pd.DataFrame(
        {"target": ["X"] * 10, "document": list("abcdefghij"), "stance": ["favor", "against"] * 5}
    )
    narrow, wide = _countries(one, 0).loc["X"], _countries(many, 0).loc["X"]
    assert narrow["net"] == 1.0 and narrow["low"] == narrow["high"] == 1.0
    assert wide["net"] == 0.0 and wide["low"] < -0.2 and wide["high"] > 0.2


@pytest.mark.parametrize(
    "extra, content, message",
    [
        (["--group-column", "nope"], None, "--group-column"),
        (["--date-column", "nope"], None, "--date-column"),
        (["--date-column", "outlet"], None, "cannot read 'Ledger' as a date"),
        ([], "id,body\n1,Russia won.\n", "missing column(s) text"),
        ([], "id,text\n1,No country at all.\n", "no country was mentioned"),
        ([], "id,text\n1,Russia won.,extra\n", "bad.csv:2: 3 fields but the header has 2"),
    ],
)
def test_bad_input_is_one_line(trained, capsys, documents, tmp_path, extra, content, message):
    source = documents
    if content is not None:
        source = tmp_path / "bad.csv"
        source.write_text(content)
    out = tmp_path / "r.html"
    status, _, err = run(capsys, "report", source, "--model", trained["model"], "--out", out,
                         "--id-column", "id", *extra)  # fmt: skip
    assert status == 2 and message in err, err
    one_error_line(err)
    assert not out.exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium binary (apt-get install chromium)")
def test_the_sample_corpus_page_in_a_browser(capsys, tmp_path):
    out = tmp_path / "sample.html"
    status, _, err = run(capsys, "report", SAMPLE, "--model", ROOT / "models" / "default",
                         "--out", out, "--id-column", "id", "--group-column", "outlet",
                         "--date-column", "date", "--title", "Sample corpus")  # fmt: skip
    assert status == 0, err
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*chromium, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    sections = re.findall(r'<section class="country" data-country="([^"]+)"', dom)
    assert len(sections) >= 5
    assert dom.count('<li class="favor"') + dom.count('<li class="against"') >= 10
    screenshot = ROOT / "reports" / "sample_corpus" / "screenshot.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*chromium, "--window-size=1280,2400", f"--screenshot={screenshot}", out.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert screenshot.stat().st_size > 10_000
