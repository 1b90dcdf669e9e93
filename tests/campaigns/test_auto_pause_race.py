"""Auto-pause raced against a person: several workers record failing groups into the campaign's
window (campaigns.recent_outcomes, one Redis script) while a person pauses then resumes it
(campaigns.services). Real PostgreSQL and Redis, real threads; repeated with different offsets.

What campaigns/services.py promises: the system pauses only a sending campaign, and resumes on its
own only a campaign it paused (``auto_paused``), never one a person paused. So the campaign's
history must be one chain of changes each of which has its record: an auto-pause its
``auto_pause`` event, a person's pause and resume their audit entries; and a person's pause is
never turned into the system's (which beat's probe would undo).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from accounts.models import AuditEvent, User
from campaigns.models import Campaign, CampaignEvent
from campaigns.services import TransitionError, campaign_pause, campaign_resume
from messaging import hooks
from messaging.hooks import CampaignOutcomes

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 20  # seconds; only reached when something stalls
ROUNDS = 12
C = Campaign.Status


@pytest.fixture
def campaign_log(transactional_db) -> Iterator[None]:
    """A trigger noting every committed change of a campaign's (status, auto_paused)."""
    table = Campaign._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TABLE race_campaign_log (seq bigserial, campaign_id bigint, old text, old_auto bool,
                                            new text, new_auto bool);
            CREATE FUNCTION race_log_campaign() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF (OLD.status, OLD.auto_paused) IS DISTINCT FROM (NEW.status, NEW.auto_paused) THEN
                INSERT INTO race_campaign_log (campaign_id, old, old_auto, new, new_auto)
                VALUES (NEW.id, OLD.status, OLD.auto_paused, NEW.status, NEW.auto_paused);
              END IF;
              RETURN NULL;
            END $$;
            CREATE TRIGGER race_log_campaign AFTER UPDATE ON "{table}" FOR EACH ROW EXECUTE FUNCTION race_log_campaign();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                DROP TRIGGER IF EXISTS race_log_campaign ON "{table}";
                DROP FUNCTION IF EXISTS race_log_campaign();
                DROP TABLE IF EXISTS race_campaign_log;
                """
            )


def history(campaign_id: int) -> list[tuple[str, bool, str, bool]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT old, old_auto, new, new_auto FROM race_campaign_log WHERE campaign_id = %s ORDER BY seq",
            [campaign_id],
        )
        return [tuple(r) for r in cursor.fetchall()]  # type: ignore[misc]


def play_round(*, campaign_id: int, user: User, rng: random.Random) -> dict[str, bool]:
    """Four workers record mostly failing groups while a person pauses then resumes the campaign;
    returns which of the person's actions went through."""
    start = threading.Barrier(5, timeout=WAIT)
    done: dict[str, bool] = {}
    errors: list[BaseException] = []
    pause_at, resume_after = rng.uniform(0, 0.04), rng.uniform(0, 0.04)

    def worker(groups: list[tuple[int, int]], offset: float) -> None:
        try:
            start.wait()
            for ok, bad in groups:
                time.sleep(offset)
                # What a send batch reports for its campaign after each group's outcomes.
                outcome = CampaignOutcomes(
                    campaign_id=campaign_id, accepted=ok, failed=bad, by_provider={"plivo": (ok, bad)}
                )
                hooks.campaigns().after_outcomes([outcome])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def person() -> None:
        try:
            start.wait()
            time.sleep(pause_at)
            for name, act in (("pause", campaign_pause), ("resume", campaign_resume)):
                try:
                    act(campaign=Campaign.objects.get(pk=campaign_id), user=user)
                    done[name] = True
                except TransitionError:
                    done[name] = False
                time.sleep(resume_after)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # Mostly failing groups: enough to cross the threshold, from four workers at once.
    plans = [[(rng.randint(0, 1), rng.randint(1, 3)) for _ in range(4)] for _ in range(4)]
    threads = [threading.Thread(target=worker, args=(p, rng.uniform(0, 0.01)), daemon=True) for p in plans]
    threads.append(threading.Thread(target=person, daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + WAIT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a racer stalled"
    assert not errors, errors
    return done


def test_auto_pause_recorded_by_workers_while_a_person_pauses_and_resumes_leaves_a_consistent_campaign(
    settings, campaign_log, bob, make_sender, make_campaign
):
    settings.SMS_AUTO_PAUSE_MIN_SENDS = 10
    settings.SMS_AUTO_PAUSE_FAILURE_RATE = 0.5
    sender = make_sender(bob)
    auto_pauses = person_pauses = person_resumes = 0

    for n in range(ROUNDS):
        rng = random.Random(2000 + n)
        campaign = make_campaign(bob, senders=[sender], name=f"race {n}", status=C.SENDING, materialized=True)
        done = play_round(campaign_id=campaign.pk, user=bob, rng=rng)

        changes = history(campaign.pk)
        final = Campaign.objects.get(pk=campaign.pk)
        context = (n, changes, done, final.status, final.auto_paused, final.pause_reason)
        # One chain from sending, ending where the campaign is.
        state = (C.SENDING, False)
        for old, old_auto, new, new_auto in changes:
            assert (old, old_auto) == state, context
            state = (new, new_auto)
        assert state == (final.status, final.auto_paused), context
        # Each change has its record, and no other change happened.
        system = [c for c in changes if c == (C.SENDING, False, C.PAUSED, True)]
        # A person's pause: of a sending campaign, or taking over the system's pause of a moment before.
        by_person_pause = [
            c for c in changes if c in ((C.SENDING, False, C.PAUSED, False), (C.PAUSED, True, C.PAUSED, False))
        ]
        by_person_resume = [c for c in changes if c[0] == C.PAUSED and c[2:] == (C.SENDING, False)]
        assert len(system) + len(by_person_pause) + len(by_person_resume) == len(changes), context
        assert len(system) == CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").count(), context
        audit = AuditEvent.objects.filter(target_id=str(campaign.pk))
        assert len(by_person_pause) == int(done["pause"]) == audit.filter(action="campaign.pause").count(), context
        assert len(by_person_resume) == int(done["resume"]) == audit.filter(action="campaign.resume").count(), context
        assert done["pause"], context  # never refused: it takes over a system pause (campaign_pause)
        if final.status == C.PAUSED and done["resume"]:  # paused again after the person's resume: by the system
            assert changes[-1] == (C.SENDING, False, C.PAUSED, True), context
        auto_pauses += len(system)
        person_pauses += int(done["pause"])
        person_resumes += int(done["resume"])

    assert auto_pauses and person_pauses and person_resumes, (auto_pauses, person_pauses, person_resumes)
