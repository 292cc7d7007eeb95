from thuphi.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed

__all__ = [
    "Forbidden",
    "ReceiptAlreadyCancelled",
    "ReceiptNotFound",
    "ReceiptNotIssuable",
    "ReceiptNumbersExhausted",
    "ValidationFailed",
]


class ReceiptNotFound(NotFound):
    code = "receipt_not_found"


class ReceiptNotIssuable(Conflict):
    """The credit is not (or no longer) money paid on a bill: nothing to give a receipt for."""

    code = "receipt_not_issuable"


class ReceiptAlreadyCancelled(InvalidTransition):
    code = "receipt_already_cancelled"


class ReceiptNumbersExhausted(Conflict):
    """A serial holds at most 9,999,999 receipts a year (7 digits); the institution needs a second serial."""

    code = "receipt_numbers_exhausted"
