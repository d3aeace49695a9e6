"""Errors the user sees. Each message is one clear sentence; no traceback is shown for these."""


class LatentLabError(Exception):
    """Base class: the message is one sentence meant for the user."""


class DatasetError(LatentLabError):
    """A dataset spec or file could not be read."""


class CheckpointError(LatentLabError):
    """A checkpoint file is missing, broken, hostile or incompatible."""


class TrainingError(LatentLabError):
    """Training stopped because it could not go on (non-finite loss, out of memory)."""


class Cancelled(LatentLabError):
    """Long work (encoding, a projection) stopped because the caller asked it to."""
