"""`thuphi import_statement --account 1023456789 FILE [--format ...] [--preset vcb]`."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from thuphi.payments.statements.parsers import FORMATS, PRESETS
from thuphi.payments.statements.service import statement_import
from thuphi.registry.models import BankAccount


class Command(BaseCommand):
    help = ("Nhập sao kê ngân hàng (CSV, XLSX, camt.053/camt.054, MT940): ghi sổ mỗi khoản tiền vào đúng một lần, "
            "gạch nợ phiếu thu theo mã thanh toán, báo cáo từng dòng không đọc được.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="Tệp sao kê")
        parser.add_argument("--account", required=True, help="Số tài khoản nhận tiền của đơn vị")
        parser.add_argument("--bin", dest="bank_bin", default="", help="Mã BIN ngân hàng, khi số tài khoản trùng "
                                                                      "ở hai ngân hàng")
        parser.add_argument("--format", dest="fmt", choices=FORMATS, help="Bỏ trống để tự nhận dạng")
        parser.add_argument("--preset", choices=sorted(PRESETS), help="Mẫu cột của ngân hàng (CSV/XLSX); "
                                                                     "mặc định: tự nhận dạng theo tên cột")

    def handle(self, *args, file: str, account: str, bank_bin: str, fmt: str | None, preset: str | None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"Không tìm thấy tệp {file}.")
        accounts = BankAccount.objects.filter(account_number=account.strip())
        if bank_bin:
            accounts = accounts.filter(bank_bin=bank_bin)
        found = list(accounts[:2])
        if not found:
            raise CommandError(f"Không có tài khoản nhận tiền số {account}.")
        if len(found) > 1:
            raise CommandError(f"Số tài khoản {account} có ở nhiều ngân hàng: thêm --bin.")
        report = statement_import(actor=None, bank_account=found[0], file_bytes=path.read_bytes(),
                                  filename=path.name, fmt=fmt, mapping=PRESETS[preset] if preset else None)
        self.stdout.write(report.as_text())
        if report.nothing_read:
            raise CommandError("Không đọc được dòng giao dịch nào trong tệp.")
        self.stdout.write(self.style.SUCCESS(f"Đã nhập xong lần nhập số {report.import_id}."))
