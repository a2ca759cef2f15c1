"""Exceptions the library raises for problems a user can fix.

The CLI turns every `PoetslearnError` into `Error: <message>` and exit code 1, so each message must
say what was expected, what was found, and what to do about it.
"""


class PoetslearnError(Exception):
    """A problem with the user's input, data or environment (not a bug)."""


class DataError(PoetslearnError):
    """The dataset or image folder cannot be used as it is."""


class WeightsError(PoetslearnError):
    """Pretrained weights cannot be found, downloaded or imported."""


class DownloadError(WeightsError):
    """A download failed or delivered the wrong bytes; nothing was left in the cache."""


class ImageError(PoetslearnError):
    """One image file cannot be decoded."""


class AccuracyError(PoetslearnError):
    """The trained classifier missed --assert_accuracy_at_least; nothing was exported."""


class GraphError(PoetslearnError):
    """An exported graph, its labels or its metadata cannot be used."""


class EngineError(PoetslearnError):
    """The engine asked for cannot run the network (or was asked for wrongly)."""
