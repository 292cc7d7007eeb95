import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from thuphi.billing.selectors import pay_url
from thuphi.core.demo import DemoSummary, demo_load
from thuphi.core.errors import ThuphiError
from thuphi.core.formatting import format_number, format_percent, format_vnd, share_percent


class Command(BaseCommand):
    help = ("Nạp dữ liệu mẫu tỉnh Bắc Ninh (mã 24): 12 đơn vị, học sinh, người bệnh, phiếu thu 4 tháng gần nhất "
            "và tài khoản cán bộ mẫu. Chạy lại khi đã có dữ liệu mẫu thì chỉ in lại thông tin đăng nhập.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2026, help="Hạt giống ngẫu nhiên (mặc định 2026)")
        parser.add_argument("--today", type=dt.date.fromisoformat, default=None,
                            help="Ngày coi là hôm nay, dạng YYYY-MM-DD (mặc định: hôm nay)")

    def handle(self, *args, seed: int, today: dt.date | None, **options):
        try:
            summary = demo_load(seed=seed, today=today)
        except ThuphiError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write("\n".join(render(summary)))


def render(summary: DemoSummary) -> list[str]:
    """The text the command prints. Phones appear only as the look-up's last 4 digits."""
    c = summary.counts
    base = settings.PUBLIC_BASE_URL
    out: list[str] = []
    if summary.created:
        seconds = f"{summary.seconds:.1f}".replace(".", ",")  # Vietnamese decimal comma
        out.append(f"Đã nạp dữ liệu mẫu tỉnh Bắc Ninh (mã 24) trong {seconds} giây.")
    else:
        out.append("Dữ liệu mẫu tỉnh Bắc Ninh (mã 24) đã có sẵn: không nạp lại.")
    out.append(
        f"  {c['institutions']} đơn vị ({c['schools']} trường, {c['health_facilities']} cơ sở y tế), "
        f"{format_number(c['payers'])} người nộp ({format_number(c['students'])} học sinh, sinh viên; "
        f"{format_number(c['patients'])} người bệnh), {format_number(c['bills'])} phiếu thu."
    )
    out.append(
        f"  Chưa thanh toán: {format_number(c['bills_open'])} phiếu, {format_vnd(c['amount_open'])} "
        f"({format_number(c['bills_overdue'])} phiếu quá hạn); đã hủy: {format_number(c['bills_cancelled'])}."
    )
    if c["credits"]:
        share = format_percent(share_percent(c["amount_cashless"], c["amount_received"]))
        out.append(
            f"  Đã nhận {format_number(c['credits'])} khoản tiền, {format_vnd(c['amount_received'])} "
            f"({share} không dùng tiền mặt); {format_number(c['credits_unmatched'])} khoản chờ đối soát."
        )
    for note in summary.notes:
        out.append(f"  Lưu ý: {note}")
    out += [
        "",
        "Địa chỉ:",
        f"  Trang người nộp:   {base}/",
        f"  Cán bộ đăng nhập:  {base}/staff/login/",
        f"  Trang quản trị:    {base}/admin/",
        f"  Tài liệu API:      {base}/api/v1/docs",
        "",
        f"Tài khoản mẫu (mật khẩu chung: {summary.password}):",
    ]
    width = max((len(login.username) for login in summary.logins), default=0)
    for login in summary.logins:
        line = f"  {login.username.ljust(width)}  {login.role_label} – {login.scope}"
        if not login.demo_password:
            line += " (có từ trước, mật khẩu không đổi)"
        out.append(line)
    if summary.lookup is not None:
        lk = summary.lookup
        out += [
            "",
            f"Tra cứu khoản phải nộp tại {base}/ (ví dụ một học sinh lớp {lk.class_name}, {lk.institution_name}):",
            f"  Mã đơn vị: {lk.institution_code}   Mã học sinh: {lk.payer_code}   "
            f"4 số cuối điện thoại: {lk.phone_last4}",
        ]
    if summary.pay_reference:
        out += ["", "Trang thanh toán một phiếu thu (VietQR):", f"  {pay_url(reference=summary.pay_reference)}"]
    out.append("")
    return out
