from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from recipients.models import ImportJob
from recipients.selectors import import_job_errors

REPORT_ROWS = 100


class ImportOptionsSerializer(serializers.Serializer):
    """What an import is told besides its file: the same options as the web import page."""

    region = serializers.CharField(
        max_length=2, required=False, allow_blank=True, help_text="Region for numbers without +country, e.g. US"
    )
    mapping = serializers.JSONField(
        required=False,
        help_text='Which column plays which role, by header name: {"phone": "Mobile", "consent": "Agreed", '
        '"consent_evidence": "Source", "consent_at": "When", "first_name": "", "ignore": ["Notes"]} '
        '("" = no column for that role; roles not named are found by header name). Roles: phone, first_name, '
        "last_name, full_name, consent, consent_evidence, consent_at. In a form or a query string: as a JSON string.",
    )
    consent_evidence = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        help_text="Consent evidence (text or URL) for opted_in rows without their own; give consent_at with it",
    )
    consent_at = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="When those rows consented, e.g. 2024-05-01; give consent_evidence with it",
    )


class ImportUploadSerializer(ImportOptionsSerializer):
    file = serializers.FileField(help_text="The CSV file (UTF-8, a header row first)")


class ImportRawOptionsSerializer(ImportOptionsSerializer):
    name = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="A file name to show for a text/csv body"
    )


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(source="row_number", help_text="1-based line in the file; the header is row 1")
    phone = serializers.CharField()
    reason = serializers.CharField()


class ImportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    list = serializers.IntegerField(source="recipient_list_id", allow_null=True, read_only=True)
    file_name = serializers.CharField(source="original_name", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    finished = serializers.BooleanField(source="is_finished", read_only=True)
    rejected_rows = serializers.SerializerMethodField()
    rejected_rows_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "list",
            "file_name",
            "status",
            "finished",
            "percent",
            "processed_rows",
            "created_count",
            "updated_count",
            "duplicate_count",
            "rejected_count",
            "consent_changes",
            "error",
            "notes",
            "region",
            "mapping",
            "consent_evidence",
            "consent_at",
            "created_at",
            "started_at",
            "finished_at",
            "rejected_rows",
            "rejected_rows_url",
        ]
        read_only_fields = fields

    def _url(self, name: str, job: ImportJob) -> str:
        return reverse(name, args=[job.pk], request=self.context.get("request"))

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job: ImportJob) -> str:
        return self._url("api:import-detail", job)

    @extend_schema_field(OpenApiTypes.URI)
    def get_rejected_rows_url(self, job: ImportJob) -> str:
        return self._url("api:import-rejected-rows", job)

    @extend_schema_field(ImportRowErrorSerializer(many=True))
    def get_rejected_rows(self, job: ImportJob) -> Any:  # a list of rows ("list" is a field here)
        """The first rejected (or partly applied) rows; all of them as CSV at rejected_rows_url."""
        if not job.is_finished:
            return []
        return ImportRowErrorSerializer(import_job_errors(job=job)[:REPORT_ROWS], many=True).data
