"""Scheduled syncs: the dispatcher RQ's CronScheduler queues every minute (`scheduler.py`).

A user with "Sincronizar automáticamente" on has `next_auto_sync_at`. Each minute the
dispatcher claims the users due within the next minute, each with one conditional UPDATE
that also moves their time to the next slot, so of any number of dispatchers running at
once (one per scheduler process) exactly one claims a user's slot. A claimed user gets a
`start_scheduled` job at their own second, which the workers' RQ scheduler queues when
due; it starts the sync the way the button does, unless one is already running.

Start times are spread: a user's slots sit at a fixed phase of the interval drawn from
their id, plus up to JITTER seconds at random, so 10,000 users on "cada 15 min" start
about 11 a second, never all at once.
"""

import logging
import math
import random
from datetime import UTC, datetime, timedelta

from flask import Flask
from redis import Redis
from rq.cron import CronScheduler

from .extensions import db, get_queue
from .models import User, now_utc
from .sync import control

log = logging.getLogger(__name__)

DISPATCH_EVERY = 60  # seconds between dispatcher runs, and how far ahead each one claims
JITTER = 30  # seconds at random on top of a user's phase
BATCH = 500  # users claimed per query
GOLDEN = (math.sqrt(5) - 1) / 2


def phase(user_id: int, period: float) -> float:
    """Where in the period the user's syncs fall: consecutive ids land far apart."""
    return (user_id * GOLDEN) % 1.0 * period


def next_slot(user_id: int, minutes: int, after: datetime, jitter: float = 0.0) -> datetime:
    """The user's first slot strictly after `after`, `jitter` seconds late."""
    period = minutes * 60
    offset = phase(user_id, period)
    slot = (math.floor((after.timestamp() - offset) / period) + 1) * period + offset
    return datetime.fromtimestamp(slot + jitter, UTC)


def set_interval(user: User, minutes: int | None, now: datetime | None = None) -> None:
    """Set the user's interval (None: off) and when their first scheduled sync runs."""
    user.auto_sync_minutes = minutes
    user.next_auto_sync_at = (
        next_slot(user.id, minutes, now or now_utc(), random.uniform(0, JITTER))
        if minutes
        else None
    )


def due_users(horizon: datetime) -> list:
    """(id, minutes, due) of users whose scheduled sync is due by `horizon`, oldest first."""
    return db.session.execute(
        db.select(User.id, User.auto_sync_minutes, User.next_auto_sync_at)
        .where(User.auto_sync_minutes.is_not(None), User.next_auto_sync_at <= horizon)
        .order_by(User.next_auto_sync_at)
        .limit(BATCH)
    ).all()


def claim(user_id: int, minutes: int, due: datetime, now: datetime, horizon: datetime) -> bool:
    """Move the user past this slot; False when another dispatcher already did."""
    # Half an interval on: the next slot normally, and after an outage one catch-up run,
    # not a second one a moment later.
    after = max(due, now) + timedelta(minutes=minutes) / 2
    won = db.session.execute(
        db.update(User)
        .where(
            User.id == user_id, User.auto_sync_minutes == minutes, User.next_auto_sync_at <= horizon
        )
        .values(next_auto_sync_at=next_slot(user_id, minutes, after, random.uniform(0, JITTER)))
    ).rowcount
    db.session.commit()
    return won == 1


def dispatch_due_syncs() -> int:
    """Claim the users whose scheduled sync is due within a minute; queue each one's start."""
    now = now_utc()
    horizon = now + timedelta(seconds=DISPATCH_EVERY)
    queue = get_queue()
    claimed = 0
    while rows := due_users(horizon):
        for user_id, minutes, due in rows:
            if not claim(user_id, minutes, due, now, horizon):
                continue
            options = {"job_timeout": 60, "result_ttl": 3600}
            if due <= now:
                queue.enqueue(start_scheduled, user_id, **options)
            else:
                queue.enqueue_at(due, start_scheduled, user_id, **options)
            claimed += 1
    if claimed:
        log.info("scheduled syncs: %d users claimed", claimed)
    return claimed


def start_scheduled(user_id: int) -> str:
    """Start a user's scheduled sync, unless one is running or the setting was turned off."""
    user = db.session.get(User, user_id)
    if user is None or user.auto_sync_minutes is None:
        return "off"
    if control.active_session(user.id):
        return "busy"  # a manual sync (or the last scheduled one) still runs: next slot
    try:
        session = control.start(user, trigger="schedule")
    except control.NoAccounts:
        return "no accounts"
    # A manual sync started since the check above wins; the unique index sees to it.
    return "started" if session.trigger == "schedule" else "busy"


def make_scheduler(app: Flask, connection: Redis) -> CronScheduler:
    """RQ's cron scheduler, queueing the dispatcher every DISPATCH_EVERY seconds."""
    scheduler = CronScheduler(connection=connection, logging_level=app.config["LOG_LEVEL"])
    # A dispatcher waiting behind long syncs is replaced by the next one, not stacked.
    scheduler.register(
        dispatch_due_syncs,
        app.config["RQ_QUEUE"],
        interval=DISPATCH_EVERY,
        job_timeout=300,
        result_ttl=600,
        ttl=2 * DISPATCH_EVERY,
    )
    return scheduler
