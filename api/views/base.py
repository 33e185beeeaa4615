"""What every API view shares: it answers for itself (401/403 JSON, never the sign-in page's
redirect), and writes made with a token are in the audit trail under the token's user."""

from contextlib import ExitStack
from contextvars import copy_context

from auditlog.context import set_actor
from auditlog.middleware import AuditlogMiddleware
from django.contrib.auth.decorators import login_not_required

from ..authentication import ApiTokenAuthentication


class ApiViewMixin:
    @classmethod
    def as_view(cls, *args, **kwargs):
        # The site-wide LoginRequiredMiddleware would send an anonymous request to the sign-in
        # page; the API's own authentication and permissions answer instead.
        return login_not_required(super().as_view(*args, **kwargs))

    def dispatch(self, request, *args, **kwargs):
        # django-auditlog's middleware took the actor from the session, before DRF read the
        # token. The token's user is set in a context of this request's own, so the
        # middleware's context is left exactly as it was when the request ends.
        return copy_context().run(self._dispatch_as_actor, request, *args, **kwargs)

    def _dispatch_as_actor(self, request, *args, **kwargs):
        with ExitStack() as self._audit_actor:
            return super().dispatch(request, *args, **kwargs)

    def perform_authentication(self, request):
        super().perform_authentication(request)
        if isinstance(request.successful_authenticator, ApiTokenAuthentication):
            raw = request._request
            self._audit_actor.enter_context(
                set_actor(request.user, remote_addr=AuditlogMiddleware._get_remote_addr(raw), remote_port=AuditlogMiddleware._get_remote_port(raw))
            )
