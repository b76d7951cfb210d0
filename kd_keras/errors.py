"""Errors that carry a message meant for the user, not a traceback."""


class KdKerasError(Exception):
    """Base class: commands print these as one clear line and exit non-zero."""


class DataError(KdKerasError):
    """A data source is missing, unreadable, empty, or has the wrong shape."""


class TeacherError(KdKerasError):
    """The teacher could not be queried or answered something unusable."""


class TransientTeacherError(TeacherError):
    """A failure worth retrying: timeout, lost connection, HTTP 429 or 5xx.

    ``retry_after`` is the wait in seconds the server asked for (``Retry-After``), if any.
    ``billed`` says whether the images may have been paid for all the same: a request that
    was sent and then timed out or lost may have been answered (and billed) by the server;
    one refused with a status (429, 5xx) or never delivered (connection refused) was not.
    """

    def __init__(self, message: str, retry_after: float | None = None, billed: bool = True):
        super().__init__(message)
        self.retry_after, self.billed = retry_after, billed


class Interrupted(KdKerasError):
    """The user stopped the run (Ctrl-C); what was paid for so far is kept."""


class BadAnswerError(TeacherError):
    """The teacher answered, but the answer is malformed; it is never cached."""


class BudgetExceededError(TeacherError):
    """Sending the next images would cross the query budget; nothing was sent."""


class ConfigError(KdKerasError, ValueError):
    """A setting names something that does not exist or cannot work together."""
