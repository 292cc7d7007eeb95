"""WSGI entry point. Bank notifications (`/api/v1/webhooks/…`) go to a lean handler without the
middleware stack (thuphi.payments.webhook_http, decision 0008); everything else to Django's."""
import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")
django_application = get_wsgi_application()

from thuphi.payments.webhook_http import PREFIX, WebhookHandler  # noqa: E402  (needs django.setup())

webhook_application = WebhookHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(PREFIX):
        return webhook_application(environ, start_response)
    return django_application(environ, start_response)


# Everything loaded so far (Django, the URL tree, the apps) lives as long as the process: keep it out of
# the cyclic garbage collector's full passes, which otherwise walked it all every few requests and
# added 100-300 ms to a national dashboard answer (docs/benchmarks.md, Monitoring). Per request garbage
# is collected as before. The URL tree (every view module) is loaded first so that it is frozen too.
get_resolver().url_patterns
gc.freeze()
