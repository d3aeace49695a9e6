"""Errors the user sees. Each message is one clear sentence; no traceback is shown for these."""


class LatentLabError(Exception):
    """Base class: the message is one sentence meant for the user."""


class DatasetError(LatentLabError):
    """A dataset spec or file could not be read."""


class CheckpointError(LatentLabError):
    """A checkpoint file is missing, broken, hostile or incompatible."""


class ModelError(LatentLabError):
    """A model SPEC, the user's model code or what it returns cannot be used."""


class ResourceError(LatentLabError):
    """The work asked for cannot fit this machine's memory; refused before allocating it."""


class Cancelled(LatentLabError):
    """Long work (a dataset load) was stopped because its caller asked it to, e.g. the window closed."""
