from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from thuphi.billing.models import BillBatch
from thuphi.billing.notices import notices_for_batch
from thuphi.core.errors import ThuphiError


class Command(BaseCommand):
    help = "In giấy báo thu của một đợt thu ra PDF: thuphi notices --batch 12 [--class 6A] -o giay-bao-6A.pdf"

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, required=True, help="Số đợt thu")
        parser.add_argument("--class", dest="class_name", help="Chỉ in một lớp, ví dụ 6A")
        parser.add_argument("-o", "--output", required=True, help="Tệp PDF ghi ra")

    def handle(self, *args, batch: int, class_name: str | None, output: str, **options):
        found = BillBatch.objects.filter(pk=batch).first()
        if found is None:
            raise CommandError(_("Không tìm thấy đợt thu #%(id)d.") % {"id": batch})
        try:
            pdf = notices_for_batch(batch=found, class_name=class_name)
        except ThuphiError as exc:
            raise CommandError(exc.message) from exc
        Path(output).write_bytes(pdf)
        self.stdout.write(self.style.SUCCESS(_("Đã ghi %(f)s (%(kb)d KB).") % {"f": output, "kb": len(pdf) // 1024}))
