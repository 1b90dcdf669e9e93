"""The OpenAPI schema and the Swagger UI: public only when API_DOCS_PUBLIC says so.

Off (the production default), they need a signed-in person or an API token, like the API
itself: the schema holds no data, but it maps every endpoint for whoever asks.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated


class _DocsAccess:
    def get_permissions(self) -> list[BasePermission]:
        # Read per request, not at import, so the setting can change (tests, reloads).
        return [AllowAny()] if settings.API_DOCS_PUBLIC else [IsAuthenticated()]


class SchemaView(_DocsAccess, SpectacularAPIView):
    pass


class DocsView(_DocsAccess, SpectacularSwaggerView):
    pass
