"""The errors geostance reports to its user as one line, never as a traceback."""


class GeostanceError(Exception):
    """Bad input or a bad artifact: the message alone tells the user what to fix."""


class DataError(GeostanceError):
    """A data file is missing, unreadable or invalid; the message names file and line."""


class ConfigError(GeostanceError):
    """An experiment config is unreadable or has unknown or invalid keys."""


class ModelError(GeostanceError):
    """A saved model is missing, corrupt, tampered with or from another library version."""
