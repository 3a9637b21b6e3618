"""Exceptions the Django side catches and shows to people.

Each carries a message written for an administrator or advisor, because the web layer shows
``str(error)`` as is rather than translating internal failure modes.
"""


class DataInsufficientError(ValueError):
    """The training data cannot support an honest model (too few students of one outcome, ...)."""


class InvalidChangeError(ValueError):
    """A what-if change names an unknown or non-actionable feature, or an impossible value."""


class ArtifactFormatError(ValueError):
    """Bytes given to ``load_artifact`` are not a model artifact this version can read."""


class SchemaError(ValueError):
    """The feature schema contradicts itself or the data (unknown kind, missing column, ...)."""
