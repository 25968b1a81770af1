"""The one exception type that reaches users as a clear message instead of a traceback."""


class EcgCrnnError(Exception):
    """A problem with the user's input (a file, a key, a value) that the message names.

    The CLI prints it without a traceback and exits non-zero; library callers catch it like any exception.
    """
