from .roles import Role, role_of


def roles(request):
    held = role_of(request.user) if hasattr(request, "user") else None
    return {
        "user_role": held,
        "can_operate": held is not None and held >= Role.OPERATOR,
        "can_administer": held is not None and held >= Role.ADMINISTRATOR,
    }
