from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.csp import CSP
from django.utils.functional import lazy
from django.views.decorators.csp import csp_override
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from autotuner import views
from autotuner.health import healthz
from engines.urls import api_router as engines_api
from presets.urls import api_router as presets_api
from tasks.urls import api_router as tasks_api

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include("accounts.urls")),
    path("presets/", include("presets.urls")),
    path("tasks/", include("tasks.urls")),
    path("engines/", include("engines.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers and tools that ignore base.html's <link rel="icon"> still ask here. Resolved per request:
    # with hashed static files the name is known only once collectstatic has run.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg")), name="favicon"),
    path("admin/", admin.site.urls),
    path("api/", include(presets_api.urls)),
    path("api/", include(tasks_api.urls)),
    path("api/", include(engines_api.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), not inline: the CSP allows no
    # inline code. Swagger UI draws its icons as data: images, so this page alone allows them.
    path(
        "api/docs/",
        csp_override({**settings.SECURE_CSP, "img-src": [CSP.SELF, "data:"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

# JSON under /api/ for an unknown path; quotes the request id, and answers 503 for a database that is
# away (autotuner.errors).
handler404 = "autotuner.errors.page_not_found"
handler500 = "autotuner.errors.server_error"
