"""API sign-in with a user's token: `Authorization: Bearer <token>` (or `Token <token>`).

The request acts as the token's user, with that user's role as it is now: a user who lost a
role or was deactivated loses it through every token too."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core import api_tokens

KEYWORDS = ("bearer", "token")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        words = authentication.get_authorization_header(request).split()
        if not words or words[0].decode("latin-1").lower() not in KEYWORDS:
            return None  # no token: another scheme (the session) may apply
        if len(words) != 2:
            raise exceptions.AuthenticationFailed("Send the token as 'Authorization: Bearer <token>', without spaces in the token.")
        try:
            secret = words[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("This API token is unknown or revoked.") from None
        try:
            token = api_tokens.authenticate(secret)
        except api_tokens.TokenExpired as expired:
            raise exceptions.AuthenticationFailed(str(expired)) from None
        if token is None:
            raise exceptions.AuthenticationFailed("This API token is unknown or revoked.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This API token's user is deactivated.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes an unauthenticated request a 401 that names the scheme, not a 403.
        return 'Bearer realm="vmotion"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token made on the API tokens page (Preferences › API tokens), sent as `Authorization: Bearer vmo_…`.",
        }
