"""Errors the user sees. Each message is one clear sentence; no traceback is shown for these."""


class LatentLabError(Exception):
    """Base class: the message is one sentence meant for the user."""


class DatasetError(LatentLabError):
    """A dataset spec or file could not be read."""


class CheckpointError(LatentLabError):
    """A checkpoint file is missing, broken, hostile or incompatible."""


class ModelError(LatentLabError):
    """A model SPEC, the user's model code or what it returns cannot be used."""
