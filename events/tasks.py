from __future__ import annotations

from celery import shared_task

from events import delivery


@shared_task(name="events.deliver", ignore_result=True)
def deliver(endpoint_id: int) -> None:
    """Drain one endpoint's outbox; queued after a commit that added events (events.services.kick)."""
    result = delivery.deliver_endpoint(endpoint_id)
    if result.more:
        deliver.delay(endpoint_id)  # a long backlog: continue in a fresh task, others get a turn


@shared_task(name="events.purge", ignore_result=True)
def purge() -> None:
    """Beat, hourly: delivered events past WEBHOOK_RETENTION_DAYS go, in bounded batches."""
    for _ in range(100):
        if delivery.purge_delivered() == 0:
            break


@shared_task(name="events.sweep", ignore_result=True)
def sweep() -> None:
    """Beat, every few seconds: retries that are due, and anything a lost task or kick left behind."""
    for endpoint_id in delivery.due_endpoints():
        deliver.delay(endpoint_id)
