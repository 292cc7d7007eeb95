"""Due-date reminders, queued in the outbox; re-running the job the same day sends nothing twice."""
from __future__ import annotations

import datetime as dt

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from thuphi.billing.models import OPEN_STATUSES, Bill
from thuphi.billing.selectors import pay_url
from thuphi.core.formatting import format_date, format_vnd
from thuphi.core.outbox import outbox_enqueue


def reminders_enqueue(*, days_before: int = 3, today: dt.date | None = None) -> int:
    """Queue a reminder for every open bill due in exactly `days_before` days."""
    today = today or timezone.localdate()
    due = today + dt.timedelta(days=days_before)
    n = 0
    with translation.override("vi"):
        for bill in Bill.objects.filter(status__in=OPEN_STATUSES, due_date=due).select_related(
                "payer", "institution").iterator():
            payer = bill.payer
            text = _("Nhắc hạn: phiếu thu %(ref)s của %(inst)s (%(title)s) còn %(left)s, hạn nộp %(due)s. "
                     "Thanh toán: %(url)s") % {
                "ref": bill.reference, "inst": bill.institution.name, "title": bill.title,
                "left": format_vnd(bill.amount_outstanding), "due": format_date(bill.due_date),
                "url": pay_url(reference=bill.reference)}
            subject = _("Nhắc hạn nộp %(ref)s") % {"ref": bill.reference}
            for channel, recipient in (("email", payer.email), ("sms", payer.guardian_phone or payer.phone)):
                n += outbox_enqueue(channel=channel, recipient=recipient, subject=subject, body=text,
                                    dedupe_key=f"remind:{bill.pk}:{bill.due_date}:{days_before}:{channel}")
    return n
