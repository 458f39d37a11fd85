"""The exception type users see as a single line (the CLI prints it without a traceback), and its one
subclass callers catch by kind: docids that are missing."""

from typing import Sequence


class DecrankError(Exception):
    """An error the user can fix: bad input, mismatched store, unknown docid.

    The message speaks of the Python API's arguments; where the command line names the same thing
    differently (``skip_missing=True`` against ``--skip-missing``), ``cli`` holds its wording.
    """

    def __init__(self, message: str, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli or message


class MissingDocidsError(DecrankError):
    """Docids that are not where they were looked up (a store, a corpus), at most five of them named.
    ``hint`` adds how a re-ranker can drop such candidates instead."""

    def __init__(self, where: str, missing: Sequence[str], qid: str | None = None, hint: bool = False) -> None:
        self.missing = list(missing)
        shown = ", ".join(self.missing[:5]) + (f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else "")
        query = f" (query {qid})" if qid is not None else ""
        message = f"no entry for docid(s) {shown}{query} in {where}"
        if not hint:
            super().__init__(message)
            return
        super().__init__(f"{message}; pass skip_missing=True to drop such candidates",
                         cli=f"{message}; add them or pass --skip-missing")
