"""The one exception type users see as a single line (the CLI prints it without a traceback)."""


class DecrankError(Exception):
    """An error the user can fix: bad input, mismatched store, unknown docid.

    The message speaks of the Python API's arguments; where the command line names the same thing
    differently (``skip_missing=True`` against ``--skip-missing``), ``cli`` holds its wording.
    """

    def __init__(self, message: str, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli or message
