from __future__ import annotations

from thuphi.core.models import User


def user_get(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()
