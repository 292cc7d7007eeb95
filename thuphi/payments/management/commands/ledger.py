from django.core.management.base import BaseCommand, CommandError

from thuphi.payments.ledger import ledger_check


class Command(BaseCommand):
    help = "Sổ cái: `thuphi ledger check` kiểm tra mọi bất biến và thoát mã khác 0 nếu có sai lệch."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("check", help="Kiểm tra nợ = có, và số đã nộp của từng phiếu thu")

    def handle(self, *args, action: str, **options):
        report = ledger_check()
        self.stdout.write(f"{report.transactions} bút toán, {report.entries} dòng sổ cái")
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(f"  SAI LỆCH: {problem}")
            raise CommandError(f"Sổ cái có {len(report.problems)} sai lệch.")
        self.stdout.write(self.style.SUCCESS("Sổ cái cân đối: mọi bất biến đều đúng."))
