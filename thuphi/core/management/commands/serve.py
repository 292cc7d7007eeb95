from django.core.management.base import BaseCommand

from thuphi.config.wsgi import application


class Command(BaseCommand):
    help = "Phục vụ ứng dụng bằng waitress (không cần máy chủ web riêng; tài nguyên tĩnh do ứng dụng phục vụ)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args, host: str, port: int, threads: int, **options):
        from waitress import serve

        self.stdout.write(f"Serving on http://{host}:{port}/")
        serve(application, host=host, port=port, threads=threads, ident="thuphi")
