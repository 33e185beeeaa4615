"""The OpenAPI schema as drf-spectacular infers it, made exact where inference cannot see:
each operation names the role it needs, and lists the errors it can answer, all with the
one error body (api/errors.py)."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from .permissions import role_needed
from .serializers.errors import ErrorSerializer

ERRORS = {
    400: "Bad input (a field or filter of the wrong type, out of range, unknown), or a request the service layer refuses; nothing was changed",
    401: "No token or session, or an unknown, revoked or deactivated user's token",
    403: "The user's role does not allow this",
    404: "No object with this id, or a page past the last",
    429: "Too many requests from this user (API_THROTTLE_USER): wait the Retry-After seconds",
}


class ApiAutoSchema(AutoSchema):
    def get_description(self) -> str:
        described = super().get_description()
        role = role_needed(self.view, self.method)
        needs = f"Needs the {role.group_name} role." if role else "Declares no role: refused to everyone."
        return f"{described}\n\n{needs}" if described else needs

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(OpenApiResponse(ErrorSerializer, description=ERRORS[code]), str(code), direction=direction)
        return responses

    def _error_codes(self) -> list[int]:
        parameters = self._get_parameters()
        codes = [401, 403, 429]
        if self.method in ("POST", "PUT", "PATCH") or any(parameter["in"] == "query" for parameter in parameters):
            codes.append(400)
        if self._is_list_view() or any(parameter["in"] == "path" for parameter in parameters):
            codes.append(404)
        return codes
