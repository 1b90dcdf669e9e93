"""CSV import over REST: the web import's service and rules (docs/recipients.md), one job per upload.

``POST /lists/{id}/imports`` (on the lists view) answers 202 at once with the job; the job is
polled at ``GET /imports/{id}`` and its rejected rows are downloadable as CSV.
"""

from __future__ import annotations

from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import StreamingHttpResponse
from django.utils.datastructures import MultiValueDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import BaseParser, DataAndFiles, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.idempotency import idempotent
from api.schema import ErrorSerializer
from api.serializers.imports import (
    ImportJobSerializer,
    ImportOptionsSerializer,
    ImportRawOptionsSerializer,
    ImportUploadSerializer,
)
from api.views.base import ReadOnlyViewSet, api_user
from recipients import exports, selectors, services
from recipients.models import ImportJob, RecipientList
from recipients.uploads import UploadTooLarge, copy_capped

_PIECE = 64 * 1024


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The file is larger than the upload limit."
    default_code = "too_large"


class CsvBodyParser(BaseParser):
    """A raw ``text/csv`` body, streamed to a temporary file (never held in memory), capped."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        upload = TemporaryUploadedFile("upload.csv", "text/csv", 0, None)
        try:
            upload.size = copy_capped(iter(lambda: stream.read(_PIECE), b""), upload)
        except UploadTooLarge as exc:
            upload.close()
            raise PayloadTooLarge(str(exc)) from None
        upload.seek(0)
        return DataAndFiles({}, MultiValueDict({"file": [upload]}))


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else str(data or "").encode()


RAW_OPTIONS = [
    OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        required=False,
        description=f"With a text/csv body: {text}",
    )
    for name, text in [
        ("name", "the file name to show"),
        ("region", "region for numbers without +country"),
        ("mapping", "the column mapping, as a JSON string"),
        ("consent_evidence", "evidence for opted_in rows without their own"),
        ("consent_at", "the date for those rows"),
    ]
]


def start_import(view, request: Request, recipient_list: RecipientList) -> Response:
    """Validate the options, save the upload and queue the job; 202 with the job and its Location."""
    user = api_user(request)
    if not selectors.recipient_lists_importable_by(user=user).filter(pk=recipient_list.pk).exists():
        raise NotFound()
    options: ImportOptionsSerializer
    if request.content_type.split(";")[0].strip().lower() == CsvBodyParser.media_type:
        options = ImportRawOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Send the CSV as the body (text/csv) or as a multipart field 'file'."]})
        upload.name = options.validated_data.pop("name", "") or "upload.csv"
    else:
        options = ImportUploadSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        upload = options.validated_data.pop("file")
    try:
        job = services.import_job_create(
            uploaded_file=upload, recipient_list=recipient_list, user=user, **options.validated_data
        )
    except UploadTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    data = ImportJobSerializer(job, context=view.get_serializer_context()).data
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


class ListImportsMixin:
    """``POST /lists/{id}/imports`` for the lists view."""

    @extend_schema(
        summary="Import a CSV into this list (admins and senders); answers at once with the job",
        request={"multipart/form-data": ImportUploadSerializer, "text/csv": OpenApiTypes.BINARY},
        parameters=RAW_OPTIONS,
        responses={
            202: ImportJobSerializer,
            413: OpenApiResponse(ErrorSerializer, description="The file is larger than SMS_IMPORT_MAX_UPLOAD_MB."),
        },
    )
    @action(detail=True, methods=["post"], url_path="imports", parser_classes=[MultiPartParser, CsvBodyParser])
    def imports(self, request, pk=None):
        response = self._start_import(request, pk)
        if response.status_code == status.HTTP_202_ACCEPTED and "url" in (response.data or {}):
            response["Location"] = response.data["url"]  # a replayed response gets it too
        return response

    imports.idempotent = True  # type: ignore[attr-defined]  # documented by api.schema: _start_import is

    @idempotent
    def _start_import(self, request, pk=None):
        return start_import(self, request, self.get_object())  # type: ignore[attr-defined]


@extend_schema_view(
    list=extend_schema(summary="CSV imports, newest first"),
    retrieve=extend_schema(summary="An import: status, progress and the first rejected rows"),
)
class ImportJobViewSet(ReadOnlyViewSet):
    """Imports into the lists you may use (and your own), with their progress and row report."""

    serializer_class = ImportJobSerializer

    def get_queryset(self):
        return selectors.import_jobs_visible_to(user=api_user(self.request))

    @extend_schema(
        summary="All rejected (or partly applied) rows of an import, as CSV",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="rejected-rows",
        pagination_class=None,
        renderer_classes=[JSONRenderer, CsvRenderer],
    )
    def rejected_rows(self, request, pk=None):
        job: ImportJob = self.get_object()
        response = StreamingHttpResponse(
            exports.csv_lines(exports.import_errors_rows(job=job)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected-rows.csv"'
        return response
