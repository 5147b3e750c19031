"""The harness's one exception."""


class HarnessError(Exception):
    """A failure to report on stderr with a non-zero exit."""
