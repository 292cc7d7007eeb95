from django.core.management.base import BaseCommand

from thuphi.billing.reminders import reminders_enqueue


class Command(BaseCommand):
    help = "Xếp hàng tin nhắc hạn nộp cho các phiếu thu đến hạn sau N ngày (chạy hằng ngày; không gửi trùng)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=3)

    def handle(self, *args, days: int, **options):
        n = reminders_enqueue(days_before=days)
        self.stdout.write(f"Đã xếp hàng {n} tin nhắc hạn.")
