"""User-facing errors: raised deep inside, explained once at the edge (CLI exit code, gRPC status)."""


class UserError(Exception):
    """Something the user can fix (bad flag, missing file, bad query); the message says how."""

    exit_code = 2


class InvalidInput(UserError):
    """A request or argument that is malformed (maps to gRPC INVALID_ARGUMENT)."""


class NotFound(UserError):
    """A path, entity or item that does not exist (maps to gRPC NOT_FOUND)."""


class ModelUnavailable(UserError):
    """Model weights that cannot be had here (offline hub, missing checkpoint)."""


class IncompatibleArtifact(UserError):
    """An index, KB or checkpoint that does not fit what it is used with (e.g. model mismatch)."""


class ResourceExhausted(UserError):
    """A request within the per-item limits that asks for more work than the server allows at once
    (e.g. a batch over its pixel budget); gRPC RESOURCE_EXHAUSTED."""


class Unavailable(UserError):
    """A service the answer needs (e.g. the Milvus server) cannot be reached right now; retry later
    (maps to gRPC UNAVAILABLE, which clients retry)."""

    exit_code = 3
