"""Errors a user can cause. The CLI turns each into one clear message and exit code 2."""

from __future__ import annotations


class LrtrainError(Exception):
    """A problem with the user's input (config, data, device, paths): exit 2, no traceback.

    ``messages`` holds one line per problem so that every error in a config is shown at once.
    """

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages = list(messages)


class ConfigError(LrtrainError):
    """The config file or an override is invalid."""


class DataError(LrtrainError):
    """The data cannot be generated or read."""


class DeviceError(LrtrainError):
    """The requested device is not available."""


class RunDirError(LrtrainError):
    """A run directory cannot be created, read or written."""


class DistributedError(LrtrainError):
    """Processes of a distributed run lost each other (one died, or stopped answering)."""


class PeerFailed(LrtrainError):
    """Rank 0 of a distributed run failed and said why; the other ranks end without a word."""
