from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core import token_views, views as core_views
from core.admin_site import let_administrators_lift_lockouts, restrict_admin_to_administrators

restrict_admin_to_administrators(admin.site)
let_administrators_lift_lockouts(admin.site)

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("preferences/", core_views.preferences, name="preferences"),
    path("preferences/tokens/", token_views.api_tokens_page, name="api-tokens"),
    path("preferences/tokens/<int:pk>/revoke/", token_views.api_token_revoke, name="api-token-revoke"),
    path("api/", include("api.urls")),
    path("", include("migrations_app.urls")),
    path("", include("inventory.urls")),
]

# JSON under /api/, the usual pages elsewhere.
handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
