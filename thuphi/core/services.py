from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.core.errors import Conflict, NotFound, ValidationFailed
from thuphi.core.models import ApiToken, IdempotencyRecord, User

TOKEN_PREFIX = "thp_"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_create(*, username: str, name: str = "") -> tuple[ApiToken, str]:
    """Create a token and return it with its plain text, which is shown once and never stored."""
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(_("Không có người dùng “%(u)s”.") % {"u": username}, code="user_not_found") from None
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:12], digest=_digest(raw))
    return token, raw


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_authenticate(*, raw: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Touch at most once a minute: a write per request would serialise API traffic on SQLite.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def request_fingerprint(payload: Any) -> str:
    """A stable digest of a request body: keys sorted, so field order does not matter."""
    return _digest(json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str))


def idempotent_create(
    *, user: User, scope: str, key: str | None, fingerprint: str, create: Callable[[], str]
) -> tuple[str, bool]:
    """Run `create` at most once per (user, scope, key); return (resource id, created now?).

    The record is inserted in the same transaction as the resource. Two concurrent requests
    with one key meet at the unique constraint: the loser's whole transaction (its resource
    included) rolls back and it answers with the winner's resource. The same key with another
    body raises Conflict and creates nothing.
    """
    if not key:
        with transaction.atomic():
            return create(), True
    if len(key) > 255:
        # A malformed header, not a clash with an earlier request: 422 like any other bad input.
        raise ValidationFailed(_("Idempotency-Key dài quá 255 ký tự."), code="idempotency_key_invalid")
    existing = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
    if existing is None:
        try:
            with transaction.atomic():
                resource_id = create()
                IdempotencyRecord.objects.create(
                    user=user, scope=scope, key=key, request_hash=fingerprint, resource_id=resource_id
                )
                return resource_id, True
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
            if existing is None:
                raise
    if existing.request_hash != fingerprint:
        raise Conflict(
            _("Idempotency-Key này đã được dùng cho một yêu cầu khác."), code="idempotency_key_reused"
        )
    return existing.resource_id, False
