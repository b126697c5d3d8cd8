"""The viewer's one error type."""


class ReplayError(ValueError):
    """A bad input to the viewer (missing file, unknown name, unusable --out). One line, shown without traceback."""
