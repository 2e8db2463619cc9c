"""geostance: the author's stance toward every country a political commentary mentions.

    >>> import geostance
    >>> model = geostance.load_model()          # models/default, or $GEOSTANCE_MODEL
    >>> model.classify("Islamabad welcomed Moscow's offer.").summary

Names are imported on first use, so `import geostance` (and the CLI's start) stays light.
"""

from importlib import import_module

__all__ = [
    "Classification",
    "Gazetteer",
    "SavedModel",
    "StanceClassifier",
    "load_model",
    "split_sentences",
]

_HOMES = {
    "Classification": "geostance.classify",
    "Gazetteer": "geostance.mentions",
    "SavedModel": "geostance.artifacts",
    "StanceClassifier": "geostance.model",
    "load_model": "geostance.artifacts",
    "split_sentences": "geostance.mentions",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'geostance' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
