"""The one exception type users see as a single line (the CLI prints it without a traceback)."""


class DecrankError(Exception):
    """An error the user can fix: bad input, mismatched store, unknown docid."""
