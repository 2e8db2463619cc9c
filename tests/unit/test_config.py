import pytest

from geostance.config import load_experiment
from geostance.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_defaults_and_overrides(tmp_path):
    path = write(tmp_path, '[data]\ntrain = ["a.csv"]\n[model]\nC = 2\nword_ngram_range = [1, 3]\n')
    experiment = load_experiment(path)
    assert experiment.name == "exp"
    assert experiment.model == {"C": 2, "word_ngram_range": (1, 3)}
    assert experiment.evaluation.folds == 5
    assert experiment.data.train == ("a.csv",)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[data]\ntrain = ["a.csv"]\ncolour = 1\n', r"\[data\]: unknown key\(s\) colour"),
        ('[data]\ntrain = ["a.csv"]\n[model]\ndepth = 3\n', "unknown model parameter"),
        ('[data]\ntrain = ["a.csv"]\n[evaluation]\nfolds = "five"\n', "folds must be int"),
        ('[data]\ntrain = ["a.csv"]\n[evaluation]\nfolds = 1\n', "folds must be at least 2"),
        ("[data]\n", "lists no labeled files"),
        ('[data]\nformat = "parquet"\n', "data.format"),
        ('[data]\ntrain = ["a.csv"]\n[search]\nmetric = "auc"\n', "metric must be one of"),
        (
            '[data]\ntrain = ["a.csv"]\n[[variants]]\nname = "x"\nmodel = { gamma = 1 }\n',
            "unknown model parameter",
        ),
        ("data = [", "invalid TOML"),
    ],
)
def test_bad_configs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(write(tmp_path, text))


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_experiment(tmp_path / "nope.toml")


def test_data_override_from_command_line(tmp_path):
    path = write(tmp_path, '[data]\nformat = "tweeteval"\npath = "here"\n')
    assert load_experiment(path, path="there").data.path == "there"
