"""User-facing errors.

Anything a user can cause with bad input (a malformed file, a bad flag, a
mismatched checkpoint) raises a :class:`LewmError` subclass with a message that
names the file/key, what was expected and what was found. The CLI turns these
into a one-line ``error: ...`` and exit code 2 instead of a traceback.
"""


class LewmError(Exception):
    """Base class for errors caused by user input."""


class ConfigError(LewmError, ValueError):
    """Unknown key, wrong type or invalid value in a configuration."""


class DatasetError(LewmError, ValueError):
    """A dataset file does not follow the reference HDF5 layout."""


class CheckpointError(LewmError, ValueError):
    """A checkpoint cannot be loaded (missing files, key or shape mismatch)."""
