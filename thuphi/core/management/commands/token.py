from django.core.management.base import BaseCommand, CommandError

from thuphi.core import services
from thuphi.core.errors import ThuphiError


class Command(BaseCommand):
    help = "Quản lý API token: `thuphi token create USERNAME` in ra một token mới."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Tạo token mới cho người dùng")
        create.add_argument("username")
        create.add_argument("--name", default="", help="Ghi chú (ví dụ: tên hệ thống tích hợp)")

    def handle(self, *args, action: str, **options):
        if action == "create":
            try:
                _token, raw = services.token_create(username=options["username"], name=options["name"])
            except ThuphiError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(raw)
