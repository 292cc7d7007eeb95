from thuphi.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed

__all__ = ["BillNotFound", "BillNotCancellable", "InvalidTransition", "ValidationFailed", "Conflict"]


class BillNotFound(NotFound):
    code = "bill_not_found"


class BillNotCancellable(Conflict):
    code = "bill_not_cancellable"
