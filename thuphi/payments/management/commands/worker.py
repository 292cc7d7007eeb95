from django.core.management.base import BaseCommand

from thuphi.payments.tasks import run_worker


class Command(BaseCommand):
    help = "Tiến trình nền: ghi sổ các báo có đã nhận (an toàn khi chạy nhiều tiến trình)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Xử lý hết việc đang chờ rồi thoát")

    def handle(self, *args, once: bool, **options):
        run_worker(once=once)
