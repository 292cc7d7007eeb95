from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from thuphi.billing.bulk import bills_bulk_issue, parse_roster, parse_schedule
from thuphi.core.errors import ThuphiError
from thuphi.core.models import User
from thuphi.registry.models import Institution

#: How many row problems to print; the rest are counted. A list with thousands of errors almost
#: always has one systematic cause (wrong column, wrong file) that the first lines show.
MAX_PRINTED_ERRORS = 100


def _field_labels() -> dict[str, str]:
    return {
        "code": _("Mã"), "name": _("Họ tên"), "class_name": _("Lớp"), "grade": _("Khối"),
        "guardian_name": _("Phụ huynh"), "phone": _("Điện thoại"), "guardian_phone": _("Điện thoại phụ huynh"),
        "date_of_birth": _("Ngày sinh"), "insurance_number": _("Số thẻ BHYT"), "category": _("Đối tượng"),
        "kind": _("Loại"), "amount": _("Số tiền"), "fee_code": _("Mã khoản thu"),
    }


def parse_date(value: str) -> dt.date:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise CommandError(_("Ngày “%(d)s” không đúng dạng dd/mm/yyyy.") % {"d": value})


class Command(BaseCommand):
    help = ("Lập phiếu thu hàng loạt từ danh sách (.xlsx/.csv) và biểu phí: tất cả hoặc không phiếu nào. "
            "Ví dụ: thuphi issue_bills --institution BN-TH-01 --roster lop6a.xlsx --fees AN-T11,BHYT "
            "--due-date 30/11/2025 --batch-name \"Thu tháng 11/2025\"")

    def add_arguments(self, parser):
        parser.add_argument("--institution", required=True, help="Mã đơn vị")
        parser.add_argument("--roster", required=True, help="Danh sách người nộp (.xlsx hoặc .csv)")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--schedule", help="Biểu phí (.xlsx/.csv: tên khoản thu, loại, số tiền)")
        source.add_argument("--fees", help="Mã khoản thu trong danh mục, cách nhau bởi dấu phẩy")
        parser.add_argument("--due-date", required=True, help="Hạn nộp, dd/mm/yyyy")
        parser.add_argument("--batch-name", required=True, help="Tên đợt thu, cũng là nội dung mỗi phiếu")
        parser.add_argument("--user", help="Tên đăng nhập của người lập (kiểm tra quyền theo người này)")

    def handle(self, *args, **o):
        from tqdm import tqdm

        institution = Institution.objects.filter(code=o["institution"]).first()
        if institution is None:
            raise CommandError(_("Không tìm thấy đơn vị “%(c)s”.") % {"c": o["institution"]})
        actor = None
        if o["user"]:
            actor = User.objects.filter(username=o["user"]).first()
            if actor is None:
                raise CommandError(_("Không tìm thấy người dùng “%(u)s”.") % {"u": o["user"]})
        roster_path = Path(o["roster"])
        due_date = parse_date(o["due_date"])
        try:
            rows = parse_roster(file_bytes=self._read(roster_path), filename=roster_path.name)
            if o["schedule"]:
                schedule_path = Path(o["schedule"])
                schedule = parse_schedule(institution=institution, file_bytes=self._read(schedule_path),
                                          filename=schedule_path.name)
            else:
                schedule = parse_schedule(institution=institution, fee_codes=o["fees"].split(","))
            with tqdm(total=len(rows), unit=" phiếu", desc=_("Lập phiếu thu"), file=self.stderr._out,
                      disable=None) as bar:
                batch = bills_bulk_issue(
                    actor=actor, institution=institution, rows=rows, schedule=schedule, due_date=due_date,
                    batch_name=o["batch_name"], source_filename=roster_path.name,
                    progress=lambda done, total: bar.update(done - bar.n),
                )
        except ThuphiError as exc:
            self._report(exc)
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            _("Đã lập %(n)d phiếu thu, đợt #%(id)d “%(name)s”.")
            % {"n": batch.bill_count, "id": batch.pk, "name": batch.name}))

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise CommandError(_("Không đọc được tệp “%(f)s”: %(e)s") % {"f": path, "e": exc.strerror}) from exc

    def _report(self, exc: ThuphiError) -> None:
        details = exc.details if isinstance(exc.details, list) else []
        if not details:
            return
        labels = _field_labels()
        self.stderr.write(_("Không lập phiếu thu nào. Các lỗi cần sửa:"))
        for d in details[:MAX_PRINTED_ERRORS]:
            where = _("Dòng %(n)s") % {"n": d["row"]} if d.get("row") else _("Tệp")
            label = labels.get(d.get("field"), d.get("field") or "")
            self.stderr.write(f"  {where} – {label}: {d['message']}")
        if len(details) > MAX_PRINTED_ERRORS:
            self.stderr.write(_("  … và %(n)d lỗi khác.") % {"n": len(details) - MAX_PRINTED_ERRORS})
