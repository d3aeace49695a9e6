"""Errors the user sees. Each message is one clear sentence; no traceback is shown for these."""


class LatentLabError(Exception):
    """Base class: the message is one sentence meant for the user. `detail` holds the lines shown
    after it (the first lines of a cause's own message: the sentence alone can drop the diagnosis),
    `cause` the exception behind it (its traceback is shown with --verbose)."""

    detail: tuple = ()
    cause: BaseException | None = None


def with_cause(error: LatentLabError, cause: BaseException, lines: int = 6, width: int = 200) -> LatentLabError:
    """`error`, carrying `cause` and the lines of the cause's message after its first (at most
    `lines` of at most `width` characters each)."""
    text = str(cause)[:lines * width * 4].strip().splitlines()[1:]
    kept = [" ".join(t.split())[:width] for t in text if t.strip()][:lines]
    error.detail, error.cause = tuple(kept), cause
    return error


class DatasetError(LatentLabError):
    """A dataset spec or file could not be read."""


class CheckpointError(LatentLabError):
    """A checkpoint file is missing, broken, hostile or incompatible."""


class ModelError(LatentLabError):
    """A model SPEC, the user's model code or what it returns cannot be used."""


class ResourceError(LatentLabError):
    """The work asked for cannot fit this machine's memory; refused before allocating it."""


class Cancelled(LatentLabError):
    """Long work (a dataset load, encoding, a projection) was stopped because its caller asked it to."""
