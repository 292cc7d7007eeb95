from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.billing.models import Bill, BillLine, FeeKind
from thuphi.billing.services import bill_record_payment
from thuphi.core.errors import Forbidden, ValidationFailed
from thuphi.core.models import User
from thuphi.payments import ledger
from thuphi.payments.errors import EventConflictError, PaymentRefused
from thuphi.payments.matching import PAYABLE, match_credit
from thuphi.payments.models import (
    Account,
    Allocation,
    BankConnection,
    Credit,
    CreditSource,
    CreditStatus,
    EventConflict,
    EventStatus,
    InboundEvent,
    Method,
)
from thuphi.registry.models import BankAccount

if TYPE_CHECKING:
    from thuphi.payments.providers import NormalizedCredit

log = logging.getLogger(__name__)

DEBIT_ACCOUNT = {
    Method.CASH: Account.CASH_DRAWER,
    Method.CARD: Account.CARD_CLEARING,
    Method.TRANSFER: Account.BANK,
    Method.EWALLET: Account.BANK,
}


def fingerprint(credit: "NormalizedCredit") -> str:
    """The money fields of a notification: what must not differ between two deliveries."""
    parts = [credit.account_number, credit.virtual_account, str(credit.amount), credit.direction,
             credit.description, credit.bank_reference]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _columns(model, names: tuple[str, ...]) -> list[str]:
    """The columns of `names` (attnames) in the model's field order, as `from_db` expects them."""
    wanted = set(names)
    return [f.column for f in model._meta.concrete_fields if f.attname in wanted]


_CONN_FIELDS = ("id", "bank_account_id", "provider", "secret", "previous_secret")
_ACCOUNT_FIELDS = ("id", "institution_id", "account_number")


@functools.cache
def _connection_sql() -> tuple[str, str]:
    """Two look-ups written once as SQL: the ORM spent ten times longer building them than the
    database took to answer, on every webhook. Only text and integer columns are read, so the rows
    need no conversion on either database; the other fields load on access, as deferred fields."""
    conn_cols = ", ".join(f'c."{c}"' for c in _columns(BankConnection, _CONN_FIELDS))
    acct_cols = ", ".join(f'a."{c}"' for c in _columns(BankAccount, _ACCOUNT_FIELDS))
    c_table, a_table = BankConnection._meta.db_table, BankAccount._meta.db_table
    from thuphi.payments.models import VirtualAccount

    v_table = VirtualAccount._meta.db_table
    base = f'SELECT {conn_cols}, {acct_cols} FROM "{c_table}" c JOIN "{a_table}" a ON a."id" = c."bank_account_id" '
    by_account = base + 'WHERE c."provider" = %s AND a."account_number" = %s AND a."is_active" = %s ORDER BY c."id" LIMIT 1'
    by_virtual = (base + f'JOIN "{v_table}" v ON v."bank_account_id" = c."bank_account_id" '
                  'WHERE c."provider" = %s AND v."number" = %s AND v."is_active" = %s ORDER BY v."id", c."id" LIMIT 1')
    return by_account, by_virtual


#: Credentials found per process: (provider, key) -> (monotonic expiry, connection). Only hits are
#: kept, so the cache is bounded by the connections that exist, whatever keys callers make up.
_CONN_CACHE: dict[tuple[str, str], tuple[float, BankConnection]] = {}


def connection_cache_clear() -> None:
    _CONN_CACHE.clear()


def connection_for(*, provider: str, account_keys: list[str]) -> BankConnection | None:
    """The credentials for the receiving account named in an (as yet unverified) payload.

    Each key is tried in order as a real account number (active accounts), then as an active
    virtual account. The connection comes with its bank account (id, institution, number).

    Freshness contract: a hit is reused for WEBHOOK_CREDENTIALS_TTL seconds (0: never) by this
    process. The look-up was a fifth of an acknowledgement's CPU; the price is that a secret changed
    by another process (the admin, another server) takes effect here within the TTL. Changes made
    through `connection_set` clear this process's cache when they commit. The returned object is
    shared between requests: read it, never modify it.
    """
    ttl = settings.WEBHOOK_CREDENTIALS_TTL
    now = time.monotonic()
    if ttl > 0:
        for key in account_keys:
            hit = _CONN_CACHE.get((provider, key))
            if hit is not None and hit[0] > now:
                return hit[1]
    by_account, by_virtual = _connection_sql()
    db = transaction.get_connection()
    n_conn = len(_CONN_FIELDS)
    with db.cursor() as cur:
        for key in account_keys:
            if not key:
                continue
            for sql in (by_account, by_virtual):
                cur.execute(sql, [provider, key, True])
                row = cur.fetchone()
                if row is not None:
                    conn = BankConnection.from_db(db.alias, _CONN_FIELDS, row[:n_conn])
                    conn.bank_account = BankAccount.from_db(db.alias, _ACCOUNT_FIELDS, row[n_conn:])
                    if ttl > 0:
                        _CONN_CACHE[(provider, key)] = (now + ttl, conn)
                    return conn
    return None


_EVENT_FIELDS = ("provider", "event_id", "bank_account_id", "raw_body", "fingerprint", "account_number",
                 "virtual_account", "amount", "direction", "description", "payer_name", "bank_reference",
                 "occurred_at", "is_test", "status", "attempts", "error", "received_at")


@functools.cache
def _event_insert_sql() -> str:
    meta = InboundEvent._meta
    cols = ", ".join(f'"{meta.get_field(name).column}"' for name in _EVENT_FIELDS)
    unique = ", ".join(f'"{meta.get_field(name).column}"' for name in ("provider", "event_id"))
    return (f'INSERT INTO "{meta.db_table}" ({cols}) VALUES ({", ".join(["%s"] * len(_EVENT_FIELDS))}) '
            f'ON CONFLICT ({unique}) DO NOTHING RETURNING "{meta.pk.column}"')


def event_receive(*, provider: str, bank_account: BankAccount, credit: "NormalizedCredit", raw_body: bytes) -> str:
    """Store a verified notification once; return "stored", "duplicate" or raise a conflict.

    Idempotency contract: (provider, event_id) is unique. A redelivery with the same money
    fields is acknowledged and changes nothing; one with different money fields is refused
    (EventConflictError), recorded for staff, and never overwrites the first.

    One statement on the acknowledgement path: INSERT … ON CONFLICT DO NOTHING (PostgreSQL and
    SQLite ≥ 3.35), committed on its own unless the caller holds a transaction. A concurrent
    delivery of the same id waits for the first to commit, then finds it.
    """
    fp = fingerprint(credit)
    body = raw_body.decode("utf-8", errors="replace")
    event_id = credit.event_id[:128]
    status = EventStatus.IGNORED if (credit.is_test or credit.direction != "in") else EventStatus.PENDING
    db = transaction.get_connection()
    adapt = db.ops.adapt_datetimefield_value
    params = [provider, event_id, bank_account.pk, body, fp, credit.account_number[:32],
              credit.virtual_account[:32], credit.amount, credit.direction, credit.description,
              credit.payer_name[:255], credit.bank_reference[:128], adapt(credit.occurred_at), credit.is_test,
              str(status), 0, "", adapt(timezone.now())]
    # Inside a caller's transaction, a savepoint keeps a failed insert from breaking it.
    with (transaction.atomic() if db.in_atomic_block else contextlib.nullcontext()), db.cursor() as cur:
        cur.execute(_event_insert_sql(), params)
        row = cur.fetchone()
    if row is not None:
        if status == EventStatus.PENDING and settings.PAYMENTS_APPLY_INLINE:
            pk = row[0]
            transaction.on_commit(lambda: _apply_quietly(pk))
        return "stored"
    # A redelivery (providers deliver at least once): the first copy decides.
    meta = InboundEvent._meta
    with db.cursor() as cur:
        cur.execute(f'SELECT "{meta.pk.column}", "{meta.get_field("fingerprint").column}" FROM "{meta.db_table}" '
                    f'WHERE "{meta.get_field("provider").column}" = %s AND "{meta.get_field("event_id").column}" = %s',
                    [provider, event_id])
        existing = cur.fetchone()
    if existing is None:  # pragma: no cover - the row that stopped the insert cannot vanish (PROTECT)
        raise IntegrityError(f"{provider} event {event_id} neither inserted nor found")
    if existing[1] == fp:
        return "duplicate"
    EventConflict.objects.create(event_id=existing[0], raw_body=body, fingerprint=fp)
    log.warning("conflicting redelivery of %s event %s", provider, event_id)
    raise EventConflictError(
        _("Mã giao dịch %(id)s đã nhận với nội dung khác; không ghi đè, đã chuyển cán bộ xem xét.")
        % {"id": event_id})


def _apply_quietly(event_id: int) -> None:
    # The notification is already safe in the database and acknowledged: a failure here is
    # left for the worker to retry, never surfaced to the provider.
    try:
        event_apply(event_id=event_id)
    except Exception:  # noqa: BLE001
        log.exception("applying event %s failed; the worker will retry", event_id)


def event_apply(*, event_id: int) -> str:
    """Book a stored notification exactly once; return its final status.

    The event row is locked first, then bills in id order: two workers on the same event
    serialise on the event lock and the second sees it applied.
    """
    try:
        with transaction.atomic():
            event = InboundEvent.objects.select_for_update(of=("self",)).select_related("bank_account").get(pk=event_id)
            if event.status != EventStatus.PENDING:
                return event.status
            bank_account = event.bank_account
            if event.bank_reference and Credit.objects.filter(bank_account=bank_account,
                                                              bank_reference=event.bank_reference).exists():
                return _finish(event, EventStatus.IGNORED, "already booked from another source")
            credit = Credit.objects.create(
                institution_id=bank_account.institution_id, bank_account=bank_account, method=Method.TRANSFER,
                source=CreditSource.WEBHOOK, amount=event.amount, description=event.description,
                payer_name=event.payer_name, bank_reference=event.bank_reference, occurred_at=event.occurred_at,
                event=event, status=CreditStatus.UNMATCHED,
            )
            credit_book(credit=credit, virtual_account=event.virtual_account)
            return _finish(event, EventStatus.APPLIED, "")
    except IntegrityError:
        # A statement line or another provider booked the same bank transaction in between.
        with transaction.atomic():
            event = InboundEvent.objects.select_for_update().get(pk=event_id)
            if event.status == EventStatus.PENDING:
                return _finish(event, EventStatus.IGNORED, "already booked from another source")
            return event.status


#: Columns of a pending event the batch path reads.
_BATCH_FIELDS = ("id", "bank_account_id", "amount", "description", "payer_name", "bank_reference",
                 "virtual_account", "occurred_at")


def events_apply_batch(*, size: int = 200) -> int:
    """Book up to `size` pending notifications in one transaction; return how many were settled.

    The worker's fast path, with the outcome of `event_apply` on each event in id order:
    - the events are claimed with SELECT … FOR UPDATE SKIP LOCKED (PostgreSQL), so concurrent
      workers take disjoint batches and each event is settled by the transaction that holds it;
    - an event whose bank transaction is already a credit (same account and bank reference, from a
      statement, another provider, or an earlier event of the batch) is ignored, as in `event_apply`;
    - the others are booked by `statements.booking.credit_book_many`, which writes exactly what
      `credit_book` writes, one credit per event, then linked to their events;
    - the statistics move in the same transaction with monitoring's batch hook, called once (it
      takes its rows in one fixed order, so two workers queue instead of deadlocking); receipts
      and messages follow the commit, for the whole batch at once (`notify.after_commit_many`).
    Everything commits together or not at all: a crash or an error leaves every event pending.
    Any error is raised to the caller (`tasks.apply_pending`), which then applies the same events
    one by one with `event_apply`.
    """
    from thuphi.monitoring import services as monitoring  # lazy: monitoring reads payments' models
    from thuphi.payments.statements.booking import CreditInput, credit_book_many
    from thuphi.payments import notify

    now = timezone.now()
    with transaction.atomic():
        # (Every stored notification names its receiving account; one without could not be booked.)
        rows = list(InboundEvent.objects.select_for_update(skip_locked=True)
                    .filter(status=EventStatus.PENDING, bank_account__isnull=False).order_by("id")
                    .values_list(*_BATCH_FIELDS)[:size])
        if not rows:
            return 0
        accounts = BankAccount.objects.in_bulk({r[1] for r in rows})
        refs = {r[5] for r in rows if r[5]}
        booked_refs = set(Credit.objects.filter(bank_account_id__in=accounts, bank_reference__in=refs)
                          .values_list("bank_account_id", "bank_reference")) if refs else set()
        ignored: list[int] = []
        per_account: dict[int, list[tuple]] = {}
        for row in rows:
            key = (row[1], row[5])
            if row[5] and key in booked_refs:
                ignored.append(row[0])
                continue
            if row[5]:
                booked_refs.add(key)
            per_account.setdefault(row[1], []).append(row)
        credits: list[Credit] = []
        # Every bill of the batch is locked (by credit_book_many) before any statistics row.
        for account_id, events in per_account.items():
            account = accounts[account_id]
            booked = credit_book_many(
                bank_account=account, source=CreditSource.WEBHOOK, method=Method.TRANSFER, now=now,
                items=[CreditInput(amount=amount, occurred_at=occurred_at, description=description,
                                   payer_name=payer_name, bank_reference=bank_reference,
                                   virtual_account=virtual_account)
                       for _id, _a, amount, description, payer_name, bank_reference, virtual_account, occurred_at
                       in events])
            credits += [Credit(pk=b.credit_id, institution_id=account.institution_id, bank_account_id=account_id,
                               method=Method.TRANSFER, source=CreditSource.WEBHOOK, amount=amount,
                               occurred_at=occurred_at, status=b.status, event_id=event_id)
                        for (event_id, _a, amount, *_rest, occurred_at), b in zip(events, booked, strict=True)]
        _link_credits_to_events([(c.pk, c.event_id) for c in credits])
        for ids, status, error in (([c.event_id for c in credits], EventStatus.APPLIED, ""),
                                   (ignored, EventStatus.IGNORED, "already booked from another source")):
            if ids:
                InboundEvent.objects.filter(pk__in=ids).update(status=status, error=error,
                                                               attempts=F("attempts") + 1, applied_at=now)
        if credits:
            monitoring.stats_on_credits_booked(credits=credits)
        matched = sorted(c.pk for c in credits if c.status == CreditStatus.MATCHED)
        if matched:
            # Once per batch, set-based: receipts in bulk, numbered in credit order per institution.
            transaction.on_commit(lambda: notify.after_commit_many(matched))
    return len(rows)


def _link_credits_to_events(links: list[tuple[int, int]]) -> None:
    """Credit.event for credits just written in bulk: one statement for the whole batch."""
    if not links:
        return
    meta = Credit._meta
    table, event_col, pk_col = meta.db_table, meta.get_field("event").column, meta.pk.column
    db = transaction.get_connection()
    with db.cursor() as cur:
        if db.vendor == "postgresql":
            cur.execute(f'UPDATE "{table}" AS c SET "{event_col}" = v.event FROM unnest(%s::bigint[], %s::bigint[]) '
                        f'AS v(credit, event) WHERE c."{pk_col}" = v.credit',
                        [[c for c, _e in links], [e for _c, e in links]])
        else:
            cur.executemany(f'UPDATE "{table}" SET "{event_col}" = %s WHERE "{pk_col}" = %s',
                            [[e, c] for c, e in links])


def _finish(event: InboundEvent, status: str, error: str) -> str:
    event.status = status
    event.error = error
    event.attempts += 1
    event.applied_at = timezone.now()
    event.save(update_fields=["status", "error", "attempts", "applied_at"])
    return status


def credit_book(*, credit: Credit, virtual_account: str = "", bill_ids: list[int] | None = None,
                reason: str = "") -> Credit:
    """Match a new credit and post it: to bills when they are found, to suspense otherwise.

    Runs inside the caller's transaction. Bills are locked in id order (the fixed lock order
    shared by every path that moves money), then re-read, so concurrent credits on one bill
    each see the other's effect and none is lost.
    """
    if bill_ids is None:
        match, why_not = match_credit(institution_id=credit.institution_id, virtual_account=virtual_account,
                                      description=credit.description)
        bill_ids, reason = (match.bill_ids, match.reason) if match else ([], why_not)
    debit_account = DEBIT_ACCOUNT[credit.method]
    bank_account_id = credit.bank_account_id if debit_account == Account.BANK else None
    locked: dict[int, Bill] = {}
    if bill_ids:
        locked = {b.pk: b for b in Bill.objects.select_for_update().filter(pk__in=bill_ids).order_by("pk")}
        # Re-checked under the lock: a bill cancelled since matching no longer takes money.
        bill_ids = [i for i in dict.fromkeys(bill_ids) if i in locked and locked[i].status in PAYABLE]
        if not bill_ids:
            reason = (reason + "; " if reason else "") + "bill no longer payable"
    if not bill_ids:
        ledger.ledger_post(
            kind="unmatched_credit", institution_id=credit.institution_id, occurred_at=credit.occurred_at,
            credit=credit, memo=reason,
            lines=[ledger.Line(debit_account, debit=credit.amount, bank_account_id=bank_account_id),
                   ledger.Line(Account.SUSPENSE, credit=credit.amount)],
        )
        credit.status = CreditStatus.UNMATCHED
        credit.match_reason = reason
        credit.save(update_fields=["status", "match_reason"])
        _after_booking(credit)
        return credit
    bills = [locked[i] for i in bill_ids]
    # Deposits (tạm ứng) are held for the payer, not earned: they land in payer credit and are
    # applied to the final bill at discharge.
    earning = set(BillLine.objects.filter(bill_id__in=bill_ids).exclude(kind=FeeKind.DEPOSIT)
                  .values_list("bill_id", flat=True))
    lines = [ledger.Line(debit_account, debit=credit.amount, bank_account_id=bank_account_id)]
    takes: list[tuple[Bill, int]] = []
    remaining = credit.amount
    for i, bill in enumerate(bills):
        if remaining == 0:
            break
        outstanding = max(bill.amount_due - bill.amount_paid, 0)
        # Earlier bills take what they still owe; the last takes the rest, so an overpayment
        # lands on one bill and becomes that payer's credit.
        take = remaining if i == len(bills) - 1 else min(remaining, outstanding)
        if take == 0:
            continue
        to_revenue = min(take, outstanding) if bill.pk in earning else 0
        lines.append(ledger.Line(Account.FEE_REVENUE, credit=to_revenue, bill_id=bill.pk, payer_id=bill.payer_id))
        lines.append(ledger.Line(Account.PAYER_CREDIT, credit=take - to_revenue, bill_id=bill.pk,
                                 payer_id=bill.payer_id))
        takes.append((bill, take))
        remaining -= take
    txn = ledger.ledger_post(kind="payment", institution_id=credit.institution_id, occurred_at=credit.occurred_at,
                             credit=credit, lines=lines, memo=reason)
    for bill, take in takes:
        Allocation.objects.create(credit=credit, bill=bill, amount=take, ledger_transaction=txn)
        bill_record_payment(bill=bill, amount=take)
    credit.status = CreditStatus.MATCHED
    credit.match_reason = reason
    credit.save(update_fields=["status", "match_reason"])
    _after_booking(credit)
    return credit


def stats_hook(name: str, credit: Credit) -> None:
    """Move the monitoring statistics in the caller's transaction, so they never drift from the money."""
    from thuphi.monitoring import services as monitoring  # lazy: monitoring reads payments' models

    getattr(monitoring, name)(credit=credit)


def _after_booking(credit: Credit) -> None:
    """Statistics move in the same transaction as the money; receipts and messages after commit."""
    from thuphi.payments import notify

    stats_hook("stats_on_credit_booked", credit)
    if credit.status == CreditStatus.MATCHED:
        credit_id = credit.pk
        transaction.on_commit(lambda: notify.after_commit(credit_id))


def payment_record(
    *,
    actor: User,
    bill: Bill,
    method: str,
    amount: int,
    external_ref: str = "",
) -> Credit:
    """A payment taken at the counter (cash, card) or confirmed by staff (transfer, e-wallet)."""
    if not actor.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
    if method not in Method.values:
        raise ValidationFailed(_("Hình thức thanh toán phải là cash, card, transfer hoặc ewallet."),
                               code="invalid_method")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount > 100_000_000_000:
        raise ValidationFailed(_("Số tiền phải là số nguyên dương (đồng)."), code="invalid_amount")
    from thuphi.payments.shifts import shift_current

    shift = shift_current(actor=actor) if method in (Method.CASH, Method.CARD) else None
    if method == Method.CASH and shift is None:
        raise PaymentRefused(_("Mở ca thu ngân trước khi thu tiền mặt."), code="no_open_shift")
    if shift is not None and shift.institution_id != bill.institution_id:
        raise PaymentRefused(_("Ca đang mở thuộc đơn vị khác."), code="shift_institution_mismatch")
    with transaction.atomic():
        current = Bill.objects.select_for_update().get(pk=bill.pk)
        if current.status not in PAYABLE:
            raise PaymentRefused(_("Phiếu thu đã hủy hoặc đã hoàn tiền, không nhận thêm tiền."))
        credit = Credit.objects.create(
            shift=shift,
            institution_id=current.institution_id,
            bank_account_id=current.bank_account_id if method in (Method.TRANSFER, Method.EWALLET) else None,
            method=method, source=CreditSource.COUNTER, amount=amount, external_ref=external_ref[:128],
            occurred_at=timezone.now(), status=CreditStatus.UNMATCHED, created_by=actor,
        )
        return credit_book(credit=credit, bill_ids=[current.pk],
                           reason=f"recorded at the counter by {actor.username}")


def connection_set(*, bank_account: BankAccount, provider: str, secret: str) -> BankConnection:
    """Set a provider's secret for an account. Setting a new one keeps the old as `previous_secret`
    so notifications signed with either are accepted until `connection_rotation_finish`."""
    from thuphi.payments.models import Provider

    if provider not in Provider.values:
        raise ValidationFailed(_("Nhà cung cấp phải là sepay, casso, payos hoặc generic."), code="invalid_provider")
    secret = (secret or "").strip()
    if len(secret) < 16:
        raise ValidationFailed(_("Khóa bí mật quá ngắn (tối thiểu 16 ký tự)."), code="secret_too_short")
    with transaction.atomic():
        transaction.on_commit(connection_cache_clear)
        conn = BankConnection.objects.select_for_update().filter(bank_account=bank_account, provider=provider).first()
        if conn is None:
            return BankConnection.objects.create(bank_account=bank_account, provider=provider, secret=secret)
        if conn.secret != secret:
            conn.previous_secret, conn.secret, conn.rotated_at = conn.secret, secret, timezone.now()
            conn.save(update_fields=["secret", "previous_secret", "rotated_at"])
        return conn


def connection_rotation_finish(*, connection: BankConnection) -> None:
    BankConnection.objects.filter(pk=connection.pk).update(previous_secret="")
    transaction.on_commit(connection_cache_clear)


def credit_match_manual(*, actor: User, credit: Credit, splits: list[tuple[Bill, int]], note: str = "") -> Credit:
    """Staff settle an unmatched credit from the review queue: one bill, or split over several.

    The money leaves suspense for the bills; the amounts must add up to the whole credit.
    """
    if not actor.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
    if not splits or any(isinstance(a, bool) or not isinstance(a, int) or a <= 0 for _b, a in splits):
        raise ValidationFailed(_("Mỗi phần phải là số tiền dương."), code="invalid_amount")
    with transaction.atomic():
        locked_credit = Credit.objects.select_for_update().get(pk=credit.pk)
        if locked_credit.status != CreditStatus.UNMATCHED:
            raise PaymentRefused(_("Khoản tiền này đã được xử lý."))
        if sum(a for _b, a in splits) != locked_credit.amount:
            raise ValidationFailed(_("Tổng các phần phải bằng đúng số tiền nhận."), code="split_mismatch")
        ids = sorted({b.pk for b, _a in splits})
        if len(ids) != len(splits):
            raise ValidationFailed(_("Mỗi phiếu thu chỉ xuất hiện một lần khi chia."), code="duplicate_bill")
        bills = {b.pk: b for b in Bill.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        for b, _a in splits:
            bill = bills.get(b.pk)
            if bill is None or bill.institution_id != locked_credit.institution_id or bill.status not in PAYABLE:
                raise PaymentRefused(_("Phiếu thu %(r)s không nhận được khoản này.") % {"r": b.reference})
        earning = set(BillLine.objects.filter(bill_id__in=ids).exclude(kind=FeeKind.DEPOSIT)
                      .values_list("bill_id", flat=True))
        lines = [ledger.Line(Account.SUSPENSE, debit=locked_credit.amount)]
        for b, amount in splits:
            bill = bills[b.pk]
            outstanding = max(bill.amount_due - bill.amount_paid, 0)
            to_revenue = min(amount, outstanding) if bill.pk in earning else 0
            lines.append(ledger.Line(Account.FEE_REVENUE, credit=to_revenue, bill_id=bill.pk, payer_id=bill.payer_id))
            lines.append(ledger.Line(Account.PAYER_CREDIT, credit=amount - to_revenue, bill_id=bill.pk,
                                     payer_id=bill.payer_id))
        reason = f"matched by {actor.username}" + (f": {note}" if note else "")
        # The credit counted as unmatched until now; it is withdrawn and counted again as matched.
        stats_hook("stats_on_credit_reversed", locked_credit)
        txn = ledger.ledger_post(kind="suspense_match", institution_id=locked_credit.institution_id,
                                 occurred_at=timezone.now(), credit=locked_credit, lines=lines, memo=reason)
        for b, amount in splits:
            Allocation.objects.create(credit=locked_credit, bill=bills[b.pk], amount=amount, ledger_transaction=txn)
            bill_record_payment(bill=bills[b.pk], amount=amount)
        locked_credit.status = CreditStatus.MATCHED
        locked_credit.match_reason = (locked_credit.match_reason + "; " + reason).strip("; ")
        locked_credit.save(update_fields=["status", "match_reason"])
        stats_hook("stats_on_credit_booked", locked_credit)
        from thuphi.payments import notify

        transaction.on_commit(lambda: notify.after_commit(locked_credit.pk))
        return locked_credit
