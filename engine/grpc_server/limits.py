"""The server's own bounds on work, as plain numbers (no grpc import: `serve --help` shows them)."""

DEFAULT_MAX_REQUEST_S = 120.0  # longest one RPC may run, deadline or none; longer: DEADLINE_EXCEEDED
DEFAULT_MAX_CONCURRENT = 128  # in-flight RPCs (running + queued for a worker); more: RESOURCE_EXHAUSTED
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # room for a large image query or a 256-request batch
DEFAULT_GRACE_S = 5.0  # in-flight RPCs get this long to finish on shutdown
