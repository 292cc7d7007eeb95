from django.core.management.base import BaseCommand, CommandError

from thuphi.core.formatting import format_number


class Command(BaseCommand):
    help = ("Giám sát kế hoạch: `thuphi monitoring rebuild` tính lại thống kê từ sổ cái; "
            "`thuphi monitoring check` so sánh thống kê đang lưu với số tính lại (không ghi gì); "
            "`thuphi monitoring plans` nạp lại các kế hoạch, chỉ tiêu có sẵn.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        rebuild = sub.add_parser("rebuild", help="Tính lại DailyStat và MonthlyStat từ các khoản tiền nhận")
        rebuild.add_argument("--python", action="store_true",
                             help="Tính bằng Python từng khoản (chậm; để đối chiếu với cách tính SQL)")
        sub.add_parser("check", help="Đối chiếu thống kê đang lưu với số tính lại; mã thoát khác 0 nếu lệch")
        sub.add_parser("plans", help="Nạp lại các kế hoạch, chỉ tiêu có sẵn (theo mã)")

    def handle(self, *args, action: str, **options):
        if action == "rebuild":
            from thuphi.monitoring.services import stats_rebuild

            r = stats_rebuild(method="python" if options["python"] else "sql")
            self.stdout.write(self.style.SUCCESS(
                f"Đã tính lại ({r.method}) trong {r.seconds:.2f} s: {format_number(r.daily_rows)} dòng ngày, "
                f"{format_number(r.monthly_rows)} dòng tháng, {format_number(r.payments)} giao dịch, "
                f"{format_number(r.value)} đồng."))
        elif action == "check":
            from thuphi.monitoring.stats import stats_check

            problems = stats_check()
            for p in problems[:50]:
                self.stderr.write(f"  SAI LỆCH: {p}")
            if problems:
                raise CommandError(f"Thống kê lệch {len(problems)} dòng: chạy `thuphi monitoring rebuild`.")
            self.stdout.write(self.style.SUCCESS("Thống kê khớp với sổ cái."))
        else:
            from thuphi.monitoring.plans import plans_sync

            self.stdout.write(f"Đã nạp {plans_sync()} kế hoạch.")
