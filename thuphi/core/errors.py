"""Domain errors. Services raise these; the API turns them into JSON and pages into messages.

Every error carries a stable machine `code` (integrators switch on it) and a human message
in the active language (Vietnamese by default).
"""
from __future__ import annotations

from typing import Any


class ThuphiError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(str(message))
        self.message = str(message)
        if code:
            self.code = code
        self.details = details


class ValidationFailed(ThuphiError):
    status = 422
    code = "validation_error"


class NotFound(ThuphiError):
    status = 404
    code = "not_found"


class Forbidden(ThuphiError):
    status = 403
    code = "forbidden"


class Conflict(ThuphiError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
