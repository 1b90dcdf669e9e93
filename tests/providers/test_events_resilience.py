"""Delivery reports are never lost because Redis or the broker is briefly down."""

from django.core.cache import caches
from django.test import override_settings

from messaging.models import Message
from providers.events import record_status_events
from providers.models import ProviderEvent
from providers.status import DeliveryStatus, StatusEvent
from providers.tasks import drain_status_events

DEAD_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def test_a_report_is_stored_while_redis_is_down_and_applied_later(db, django_capture_on_commit_callbacks):
    message = Message.objects.create(
        kind=Message.Kind.SINGLE,
        to="+14155552671",
        sender="+14155550100",
        status="queued",
        provider="plivo",
        provider_message_id="uuid-1",
    )
    event = StatusEvent(
        provider="plivo", message_ref=str(message.pk), status=DeliveryStatus.DELIVERED, provider_message_id="uuid-1"
    )
    with override_settings(CACHES=DEAD_REDIS):
        assert caches["default"]._servers == ["redis://127.0.0.1:1/0"]
        with django_capture_on_commit_callbacks(execute=True):
            assert record_status_events(events=[event]) == 1
    assert ProviderEvent.objects.filter(message_ref=str(message.pk), processed_at__isnull=True).count() == 1
    assert drain_status_events() == 1
    message.refresh_from_db()
    assert message.status == "delivered"
