from __future__ import annotations

from ninja.security import HttpBearer

from thuphi.core.services import token_authenticate


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`; the user behind the token becomes `request.auth`."""

    def authenticate(self, request, token: str):
        user = token_authenticate(raw=token)
        if user is not None:
            request.user = user
        return user
