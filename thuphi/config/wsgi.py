"""WSGI entry point. Bank notifications (`/api/v1/webhooks/…`) go to a lean handler without the
middleware stack (thuphi.payments.webhook_http, decision 0008); everything else to Django's."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")
django_application = get_wsgi_application()

from thuphi.payments.webhook_http import PREFIX, WebhookHandler  # noqa: E402  (needs django.setup())

webhook_application = WebhookHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(PREFIX):
        return webhook_application(environ, start_response)
    return django_application(environ, start_response)
