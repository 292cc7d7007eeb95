from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    CASHIER = "cashier", _("Thu ngân")
    ACCOUNTANT = "accountant", _("Kế toán")
    INSTITUTION_ADMIN = "institution_admin", _("Quản trị đơn vị")
    PROVINCIAL_MONITOR = "provincial_monitor", _("Giám sát cấp tỉnh")
    SYSTEM_ADMIN = "system_admin", _("Quản trị hệ thống")


INSTITUTION_ROLES = {Role.CASHIER, Role.ACCOUNTANT, Role.INSTITUTION_ADMIN}


class User(AbstractUser):
    """A staff user. What they may see is fixed by role plus one institution or one province."""

    role = models.CharField(_("vai trò"), max_length=32, choices=Role.choices, default=Role.CASHIER)
    institution = models.ForeignKey(
        "registry.Institution", on_delete=models.PROTECT, null=True, blank=True, related_name="staff",
        verbose_name=_("đơn vị"),
    )
    province = models.ForeignKey(
        "registry.Province", on_delete=models.PROTECT, null=True, blank=True, related_name="monitors",
        verbose_name=_("tỉnh/thành phố"),
    )

    class Meta:
        verbose_name = _("người dùng")
        verbose_name_plural = _("người dùng")
        constraints = [
            models.CheckConstraint(
                name="user_institution_roles_have_institution",
                condition=~models.Q(role__in=["cashier", "accountant", "institution_admin"])
                | models.Q(institution__isnull=False)
                | models.Q(is_superuser=True),
            ),
            models.CheckConstraint(
                name="user_monitor_has_province",
                condition=~models.Q(role="provincial_monitor") | models.Q(province__isnull=False),
            ),
        ]

    @property
    def is_system_admin(self) -> bool:
        return self.is_superuser or self.role == Role.SYSTEM_ADMIN

    @property
    def can_write(self) -> bool:
        return self.is_active and self.role != Role.PROVINCIAL_MONITOR


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored: tokens are 256-bit random, so a slow hash adds nothing."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text=_("Phần đầu của token để nhận diện"))
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API token")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class IdempotencyRecord(models.Model):
    """What an idempotent request produced, so a retry gets the same answer.

    Unique per (user, scope, key): two integrators can use the same key without meeting.
    `request_hash` is a digest of the canonical body; the same key with another body is a conflict.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE)
    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_unique_key"),
        ]


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Chờ gửi")
    SENDING = "sending", _("Đang gửi")
    SENT = "sent", _("Đã gửi")
    FAILED = "failed", _("Gửi lỗi, sẽ thử lại")
    DEAD = "dead", _("Bỏ (quá số lần thử)")


class OutboxMessage(models.Model):
    """A notification to send after the fact that caused it has committed.

    `dedupe_key` is unique: enqueuing the same notice twice (a retried request, a re-run
    reminder job) stores it once. A message is claimed (pending -> sending) under a row lock
    before the channel is called; one left in `sending` by a crash is NOT resent automatically,
    because the channel may already have delivered it: never twice beats at least once here.
    """

    channel = models.CharField(max_length=16)
    recipient = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    dedupe_key = models.CharField(max_length=191, unique=True)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("thông báo chờ gửi")
        verbose_name_plural = _("thông báo chờ gửi")
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
