"""One exception family for everything a user can get wrong.

The CLI turns any :class:`GaladError` into one clear line on stderr and exit code 2.
"""


class GaladError(Exception):
    """Base class of all user-facing GALAD errors."""


class ConfigError(GaladError):
    """A configuration value or command-line flag is invalid."""


class UnknownGameError(GaladError):
    """A game name is not in the registry."""


class GameNotInstalledError(GaladError):
    """A registered game's files are not in the games directory."""


class DownloadError(GaladError):
    """A download failed or its content did not verify."""


class AnnotationError(GaladError):
    """An annotation CSV is missing or malformed."""


class EpisodeEndedError(GaladError, RuntimeError):
    """The environment was stepped after its episode ended (call ``reset()``), or after ``close()``."""


class DataNotFoundError(GaladError):
    """A dataset the command needs is not in the data directory (``galad data download`` fetches it)."""


class ModelNotFoundError(GaladError):
    """A value model (hub id, folder or checkpoint) cannot be found or loaded."""


class DataCorruptError(GaladError):
    """A data file GALAD reads (such as the shipped compact training set) is corrupt or unreadable."""
