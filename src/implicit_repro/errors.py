"""Exceptions whose messages name the offending file or key and the fix."""


class ReproError(Exception):
    """Base class: the message alone tells the user what to do."""


class ConfigError(ReproError):
    pass


class DatasetError(ReproError):
    pass


class CheckpointError(ReproError):
    pass
