"""Chat channels' own protocols: request signatures, update shapes and the calls that answer.

No rules and no storage live here (services/integrations.py and services/channel_events.py
hold those); each module speaks one channel's wire format.
"""


class ChannelError(Exception):
    """A call to a channel failed; `permanent` when retrying cannot help (a refused token or
    login, an unknown recipient), else the answer is retried with the job queue's backoff."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
