"""The HTTP side of bank notifications: one function that answers a delivery, used by the documented
ninja route and by the lean WSGI entry point that serves the same URL in production.

Why a second entry point: an acknowledgement must be cheap (issue target: 1,000 per second on two
cores). Through the full stack a third of its CPU went to middleware that a provider's signed POST
never needs (sessions, messages, CSRF, language negotiation, authentication, lockouts) and to URL
and ninja dispatch. `WebhookHandler` keeps Django's request cycle (request_started/finished, so
database connections are managed as usual; error responses and logging) with only
SecurityMiddleware in front, and validates the Host header as the full stack does.
"""
from __future__ import annotations

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.middleware.security import SecurityMiddleware
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.core.errors import ThuphiError
from thuphi.payments import services

#: The URL prefix of the route (thuphi.config.api mounts the router at /api/v1/webhooks).
PREFIX = "/api/v1/webhooks/"


def _reject(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def webhook_response(request: HttpRequest, provider: str) -> JsonResponse:
    """verify -> store (unique per provider and event id) -> acknowledge; applying follows the commit
    (embedded default) or is left to `thuphi worker`."""
    from thuphi.payments.providers import PROVIDERS, WebhookRejected

    prov = PROVIDERS.get(provider)
    if prov is None:
        return _reject("unknown_provider", _("Nhà cung cấp “%(p)s” không được hỗ trợ.") % {"p": provider[:32]}, 404)
    raw = request.body
    try:
        body = prov.parse_json(raw)
        keys = prov.account_keys(body)
        # Some providers confirm a webhook URL with a ping naming a made-up account (payOS
        # 12345678, Casso 88888888): `?account=` in the configured URL names the real one.
        if request.GET.get("account"):
            keys = [*keys, request.GET["account"][:32]]
        conn = services.connection_for(provider=provider, account_keys=keys)
        if conn is None:
            # Same answer as a bad signature: an unverified caller learns nothing about accounts.
            return _reject("bad_signature", _("Chữ ký hoặc khóa không hợp lệ."), 401)
        prov.verify(headers=request.headers, raw_body=raw, body=body, secrets=conn.secrets, now=timezone.now())
        credits = prov.normalize(body)
    except WebhookRejected as exc:
        status = 422 if exc.code in ("malformed_body", "unsupported_event") else 401
        return _reject(exc.code, exc.message, status)
    results = [services.event_receive(provider=provider, bank_account=conn.bank_account, credit=c, raw_body=raw)
               for c in credits]
    status, body_out = prov.success_response()
    if isinstance(body_out, dict):
        body_out = {**body_out, "thuphi": results}
    # A plain JsonResponse: nothing to validate on the hottest path of the API.
    return JsonResponse(body_out, status=status, safe=False)


class WebhookHandler(WSGIHandler):
    """A WSGI handler for PREFIX only (see the module docstring); `thuphi.config.wsgi` routes to it."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(
            SecurityMiddleware(convert_exception_to_response(self._dispatch)))

    def _dispatch(self, request: HttpRequest) -> JsonResponse:
        response = self._answer(request)
        # As CommonMiddleware does on the full stack: without it the server falls back to chunked encoding.
        response.headers["Content-Length"] = str(len(response.content))
        return response

    def _answer(self, request: HttpRequest) -> JsonResponse:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it on the full stack (400 if not)
        provider = request.path_info[len(PREFIX):].rstrip("/")
        if "/" in provider or not provider:
            return _reject("not_found", _("Không tìm thấy."), 404)
        if request.method != "POST":
            response = _reject("method_not_allowed", _("Chỉ nhận POST."), 405)
            response["Allow"] = "POST"
            return response
        try:
            return webhook_response(request, provider)
        except ThuphiError as exc:  # e.g. a conflicting redelivery: the API's error shape, as on the full stack
            body = {"code": exc.code, "message": exc.message}
            if exc.details is not None:
                body["details"] = exc.details
            return JsonResponse(body, status=exc.status)
