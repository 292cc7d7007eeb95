from thuphi.core.errors import Conflict, NotFound, ValidationFailed


class LedgerUnbalanced(Exception):
    """A programming error, never a user error: debits and credits of one transaction differ."""


class EventConflictError(Conflict):
    code = "event_conflict"


class UnknownAccount(NotFound):
    code = "unknown_account"


class PaymentRefused(ValidationFailed):
    code = "payment_refused"
