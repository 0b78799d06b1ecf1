"""What a client is told when a request fails: the message, the reason phrase, the JSON body.

Every error answer luigid writes as JSON (handler errors and refusals alike) is
``error_body(message)``: ``{"error": "..."}``, never a traceback.
"""

from __future__ import annotations

import json
import re

import tornado.web

JSON_TYPE = "application/json; charset=UTF-8"

#: Longest error message sent back (they may quote what the client sent).
MAX_ERROR_LENGTH = 2000
#: Characters allowed in an HTTP reason phrase (and no "<": tornado refuses it).
_UNSAFE_REASON = re.compile(r"[^\x20-\x3b\x3d-\x7e]+")


def reason_phrase(message: str) -> str:
    """The error as an HTTP reason phrase: luigi's client shows it in its RPCError."""
    return _UNSAFE_REASON.sub(" ", message)[:200].strip() or "Bad Request"


def error_body(message: str) -> str:
    """The JSON body of every error answer."""
    return json.dumps({"error": message})


class ClientError(tornado.web.HTTPError):
    """An HTTP error whose ``message`` is meant for the client, shown as is."""

    message: str


class ApiError(ClientError):
    """An error the client caused; its message is also the reason phrase (luigi's client
    shows only that)."""

    def __init__(self, status: int, message: str) -> None:
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 3] + "..."
        super().__init__(status, reason=reason_phrase(message))
        self.message = message


def error_message(status_code: int, exc: BaseException | None, reason: str) -> str:
    """What the client is told: a ClientError's message, tornado's own text for a 4xx it
    raised (bad encoding in the URL...), else the reason phrase."""
    if isinstance(exc, ClientError):
        return exc.message
    if isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
        return exc.log_message % exc.args if exc.args else exc.log_message
    return reason
