"""Demo data for `make demo`: a living slice of new Bắc Ninh (province 24) in a few seconds.

`demo_load()` registers 12 institutions (6 schools, 6 health facilities) in real communes of the new
province, their fee catalogues, about 1,200 students and patients and about 2,400 bills over the last
four months, plus one staff login per role. Institutions, payers and bills go through the services
(`institution_create`, `payer_upsert`, `bill_create`, `bill_cancel`) so the demo exercises the same
validation and the same reference/VietQR code as real use; fee items, payer categories, discount
rules, digital platforms and users have no services yet and are written with the ORM.

Determinism: every choice comes from `random.Random(seed)` and from `today`, so two loads with the
same seed and date give the same institutions, people, amounts and dates. Payment references are the
exception: `bill_create` draws them from `secrets` on purpose (they must not be guessable), so they
differ from one load to the next.

Idempotent: when the demo institutions already exist nothing is written; the summary (logins,
look-up example, pay link) is rebuilt from the database.

Everything here is fictitious except the province, the communes, the bank BINs and the public price
levels it imitates. Tax codes carry a valid check digit but belong to nobody; account numbers are
made up; the provincial hospital's name is real but its accounts here are not.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from thuphi.billing.models import OPEN_STATUSES, Bill, BillStatus, FeeItem
from thuphi.core.demo.loader import _Loader
from thuphi.core.demo.world import (
    ACCOUNTANT_THCS,
    ADMIN_BV,
    CASHIER_BV,
    CASHIER_THCS,
    DEMO_CODES,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    SCHOOL_THCS,
    DemoError,
    legacy_code_for,
)
from thuphi.core.models import Role, User
from thuphi.payments.models import Credit, CreditStatus, Method
from thuphi.registry.models import BankAccount, Institution, Payer, PayerKind, Sector

__all__ = ["DEMO_CODES", "DEMO_PASSWORD", "DEMO_USERNAMES", "DemoError", "DemoLogin", "DemoSummary", "LookupExample",
           "demo_counts", "demo_exists", "demo_load", "legacy_code_for"]

# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    role_label: str
    scope: str  # the institution or province the login sees, "" for the whole system
    demo_password: bool  # False when the user existed before the demo (password left alone)


@dataclass(frozen=True)
class LookupExample:
    institution_code: str
    institution_name: str
    payer_code: str
    class_name: str
    phone_last4: str


@dataclass
class DemoSummary:
    created: bool
    seconds: float
    counts: dict[str, int]
    logins: list[DemoLogin]
    password: str
    lookup: LookupExample | None
    pay_reference: str | None
    notes: list[str] = field(default_factory=list)





# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

DEMO_USERNAMES = ("admin", "giamsat", ACCOUNTANT_THCS, CASHIER_THCS, CASHIER_BV, ADMIN_BV)


def demo_counts(*, today: dt.date | None = None) -> dict[str, int]:
    today = today or timezone.localdate()
    insts = Institution.objects.filter(code__in=DEMO_CODES)
    bills = Bill.objects.filter(institution__in=insts)
    open_bills = bills.filter(status__in=OPEN_STATUSES)
    payers = Payer.objects.filter(institution__in=insts)
    credits = Credit.objects.filter(institution__in=insts)
    return {
        "institutions": insts.count(),
        "schools": insts.filter(sector=Sector.EDUCATION).count(),
        "health_facilities": insts.filter(sector=Sector.HEALTH).count(),
        "bank_accounts": BankAccount.objects.filter(institution__in=insts).count(),
        "fee_items": FeeItem.objects.filter(institution__in=insts).count(),
        "payers": payers.count(),
        "students": payers.filter(kind=PayerKind.STUDENT).count(),
        "patients": payers.filter(kind=PayerKind.PATIENT).count(),
        "bills": bills.count(),
        "bills_open": open_bills.count(),
        "bills_overdue": open_bills.filter(due_date__lt=today).count(),
        "bills_cancelled": bills.filter(status=BillStatus.CANCELLED).count(),
        "bills_settled": bills.filter(status__in=(BillStatus.PAID, BillStatus.OVERPAID)).count(),
        "credits": credits.count(),
        "credits_unmatched": credits.filter(status=CreditStatus.UNMATCHED).count(),
        "amount_received": credits.aggregate(s=Sum("amount"))["s"] or 0,
        "amount_cashless": credits.exclude(method=Method.CASH).aggregate(s=Sum("amount"))["s"] or 0,
        "amount_open": open_bills.aggregate(s=Sum("amount_due"))["s"] or 0,
        "users": User.objects.filter(username__in=DEMO_USERNAMES).count(),
    }


def _logins() -> list[DemoLogin]:
    out = []
    users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)
             .select_related("institution", "province")}
    for username in DEMO_USERNAMES:
        u = users.get(username)
        if u is None:
            continue
        scope = (u.institution.name if u.institution_id else
                 f"tỉnh {u.province.name}" if u.province_id else "toàn hệ thống")
        out.append(DemoLogin(username=username, role=u.role,
                             role_label=str(Role(u.role).label) if u.role in Role.values else u.role, scope=scope,
                             demo_password=(u.email or "").endswith("@" + DEMO_EMAIL_DOMAIN)))
    return out


def _examples(*, today: dt.date) -> tuple[LookupExample | None, str | None]:
    """A THCS pupil with open bills (the look-up example) and the newest of them (the pay link).

    Preferred: two or more open bills, one of them not yet due, so the example shows both an
    overdue and a current bill; the fallbacks keep an example in the summer holidays.
    """
    inst = Institution.objects.filter(code=SCHOOL_THCS).first()
    if inst is None:
        return None, None
    open_q = Q(bills__status__in=OPEN_STATUSES)
    candidates = (
        Payer.objects.filter(institution=inst, category__isnull=True).exclude(guardian_phone="")
        .annotate(n_open=Count("bills", filter=open_q),
                  n_current=Count("bills", filter=open_q & Q(bills__due_date__gte=today)))
        .order_by("class_name", "code")
    )
    payer = (candidates.filter(n_open__gte=2, n_current__gte=1).first()
             or candidates.filter(n_open__gte=2).first() or candidates.filter(n_open__gte=1).first())
    if payer is None:
        return None, None
    bill = payer.bills.filter(status__in=OPEN_STATUSES).order_by("-issue_date", "-id").first()
    example = LookupExample(institution_code=inst.code, institution_name=inst.name, payer_code=payer.code,
                            class_name=payer.class_name, phone_last4=payer.contact_phone[-4:])
    return example, bill.reference if bill else None


def demo_exists() -> bool:
    present = Institution.objects.filter(code__in=DEMO_CODES).count()
    if present and present != len(DEMO_CODES):
        raise DemoError(
            "Một phần đơn vị mẫu đã có trong cơ sở dữ liệu (%d/%d mã: %s…); không nạp chồng lên. "
            "Dùng cơ sở dữ liệu trống cho dữ liệu mẫu." % (present, len(DEMO_CODES), ", ".join(DEMO_CODES[:3]))
        )
    return present == len(DEMO_CODES)


def demo_load(*, seed: int = 2026, today: dt.date | None = None) -> DemoSummary:
    """Load the demo province once; later calls only report what is there."""
    today = today or timezone.localdate()
    started = time.perf_counter()
    notes: list[str] = []
    with transaction.atomic():
        created = not demo_exists()
        if created:
            loader = _Loader(seed=seed, today=today)
            loader.run()
            notes = loader.notes
    lookup, reference = _examples(today=today)
    return DemoSummary(created=created, seconds=time.perf_counter() - started, counts=demo_counts(today=today),
                       logins=_logins(), password=DEMO_PASSWORD, lookup=lookup, pay_reference=reference, notes=notes)
