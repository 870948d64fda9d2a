"""The Redis progress contract: key names, fields, states, snapshots, throttling, ETA, events.

No other module spells a Redis key of the product's state (metrics.py keeps its counters
under one key of its own, and RQ and Flask-Limiter theirs). Workers write each account's
counts as absolute values taken from the database checkpoint they just committed, so a
retried batch or a restarted Redis can never make a count drift; the session's figures are
the sum of its accounts. Every broadcast is a full snapshot, appended to a short
per-session Redis Stream (replay for Last-Event-ID) and announced on one pub/sub channel
that each web process reads once; what streams need to open without the database (who
owns a session, the user's newest one and how it ended, the login nonce) is kept here too.
"""

import json
import time
from collections.abc import Iterable, Sequence
from typing import cast

import redis

from . import metrics
from .states import AccountStatus, SessionStatus

# The status enum of the contract is states.py's; these names stay for the modules that
# import them from here.
SESSION_STATES = tuple(SessionStatus)
TERMINAL_STATES = SessionStatus.TERMINAL
ACCOUNT_STATES = tuple(AccountStatus)

CHANNEL = "es:events"
EVENTS_KEPT = 200  # events replayable through Last-Event-ID
EXPIRE_AFTER_END = 3600  # seconds the progress keys outlive a finished session
EXPIRE_WHILE_ACTIVE = 86400  # safety net for a session whose workers all vanished
RECENT_WINDOW = 300  # seconds of samples behind the "recent rate"
BROADCAST_EVERY = 100  # emails
BROADCAST_AFTER = 5.0  # seconds
MIN_INTERVAL = 1.0  # seconds between two progress broadcasts of a session

ACCOUNT_FIELDS = (
    "status",
    "total",
    "processed",
    "detected",
    "errors",
    "error_kind",
    "error_message",
    "bank",
    "counted",
)
LATEST_KEPT = 30 * 86400  # seconds a user's newest session is remembered
LOGIN_KEPT = 300  # seconds a login nonce is remembered for streams (a logout forgets it)
# Session fields besides the status: "counting" is "1" while the accounts' mail is counted,
# "finished_at" (epoch ms) is set once the session ended, "trigger" says what started it
# (models.TRIGGERS), so a scheduled sync is told apart in every widget; "user", "id" (of
# its row) and "labels" (JSON: each account's address by id) let a stream open without the
# database.


def session_key(token: str) -> str:
    return f"es:sync:{token}"


def account_key(token: str, account_id: int) -> str:
    return f"es:sync:{token}:account:{account_id}"


def samples_key(token: str) -> str:
    return f"es:sync:{token}:samples"


def events_key(token: str) -> str:
    return f"es:sync:{token}:events"


def scan_key(token: str, account_id: int) -> str:
    return f"es:sync:{token}:scan:{account_id}"


def latest_key(user_id: int) -> str:
    """The user's newest session, the one their streams follow (a hash: "token", "id",
    "labels", and once it ended "final_id" and "final", its last event)."""
    return f"es:user:{user_id}:latest"


def login_key(user_id: int) -> str:
    """The user's login nonce (models.User.session_nonce), as streams check it."""
    return f"es:user:{user_id}:login"


def account_lock_key(row_id: int) -> str:
    """The lock a job holds on an account of a session while it syncs it (AccountLock)."""
    return f"es:lock:row:{row_id}"


# The account lock's three steps, each atomic. Its value is the holder's token.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# A user's newest session, remembered from the database only if nothing is yet; and its
# last event, kept only if it is still the newest.
_REMEMBER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'id', ARGV[2], 'labels', ARGV[3])
return redis.call('EXPIRE', KEYS[1], ARGV[4])
"""
_FINAL = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('HSET', KEYS[1], 'final_id', ARGV[2], 'final', ARGV[3])
"""


class AccountLock:
    """The lock a job holds on an account of a session while it syncs it.

    One job at a time stores an account's mail. The lock's value is the holder's token (its
    RQ job id), so the same job run again after its work-horse was killed takes the lock back
    at once, while any other job waits until it is released or expires: `timeout` seconds
    after the holder's last `extend()`, which the job calls before storing each batch. A job
    whose `extend()` fails and cannot `claim()` again has been superseded and stores nothing.
    """

    def __init__(self, client: redis.Redis, row_id: int, token: str, timeout: float):
        self.redis, self.key, self.token = client, account_lock_key(row_id), token
        self._ms = int(timeout * 1000)
        self._claim = client.register_script(_CLAIM)
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)

    def claim(self, wait: float = 0.0) -> bool:
        """Take the lock (or take it back), waiting up to `wait` seconds for another holder."""
        deadline = time.monotonic() + wait
        while not self._claim(keys=[self.key], args=[self.token, self._ms]):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def extend(self) -> bool:
        """Hold it `timeout` seconds more; False if it is no longer this holder's."""
        return bool(self._extend(keys=[self.key], args=[self.token, self._ms]))

    def release(self) -> bool:
        """Let go, if it is still this holder's; True if it was."""
        return bool(self._release(keys=[self.key], args=[self.token]))


def now_ms() -> int:
    return int(time.time() * 1000)


# Decides atomically whether a progress broadcast may go out now; state changes always may.
_GATE = """
local now = tonumber(ARGV[1])
local processed = tonumber(ARGV[2])
local force = ARGV[3] == '1'
local last = tonumber(redis.call('HGET', KEYS[1], 'published_at') or '0')
local last_processed = tonumber(redis.call('HGET', KEYS[1], 'published_processed') or '-1')
if not force then
  if now - last < tonumber(ARGV[4]) then return 0 end
  if processed - last_processed < tonumber(ARGV[5]) and now - last < tonumber(ARGV[6]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'published_at', now, 'published_processed', processed)
return 1
"""


class Progress:
    """Reads and writes one Redis's progress data; pass the client explicitly."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._gate = client.register_script(_GATE)
        self._remember = client.register_script(_REMEMBER)
        self._final = client.register_script(_FINAL)

    # -- writes (workers, and the web process when a user pauses or resumes) --------------

    def start_session(
        self,
        token: str,
        *,
        status: str,
        started_at_ms: int,
        accounts: Iterable[dict],
        trigger: str = "manual",
        owner: dict | None = None,
    ) -> None:
        """Seed (or re-seed after a Redis restart) a session and its accounts.

        `owner` ({"user", "id", "labels"}): whose session it is, its row and its accounts'
        addresses, for the streams; an active session is also its user's newest."""
        accounts = list(accounts)
        mapping = {
            "status": status,
            "started_at": started_at_ms,
            "trigger": trigger,
            "accounts": ",".join(str(a["id"]) for a in accounts),
        }
        pipe = self.redis.pipeline(transaction=True)
        if owner is not None:
            labels = json.dumps(owner["labels"])
            mapping.update(user=owner["user"], id=owner["id"], labels=labels)
            if status in SessionStatus.ACTIVE:
                latest = latest_key(owner["user"])
                pipe.delete(latest)
                pipe.hset(latest, mapping={"token": token, "id": owner["id"], "labels": labels})
                pipe.expire(latest, LATEST_KEPT)
        pipe.hset(session_key(token), mapping=mapping)
        pipe.expire(session_key(token), EXPIRE_WHILE_ACTIVE)
        for account in accounts:
            key = account_key(token, account["id"])
            pipe.hset(key, mapping=_account_mapping(account))
            pipe.expire(key, EXPIRE_WHILE_ACTIVE)
        pipe.execute()

    def exists(self, token: str) -> bool:
        return bool(self.redis.exists(session_key(token)))

    def owner(self, token: str) -> dict | None:
        """{"user", "id", "labels"} of a session seeded with its owner, while Redis holds it."""
        user, row_id, labels = cast(
            list, self.redis.hmget(session_key(token), ["user", "id", "labels"])
        )
        if not (user and row_id and labels):
            return None
        return {"user": int(user), "id": int(row_id), "labels": _labels(labels)}

    def forget_user(self, user_id: int, login: bool = True) -> None:
        """Forget what streams keep of a user: their newest session (an account of it was
        deleted) and, with `login`, their login nonce (the user was deleted)."""
        keys = [latest_key(user_id)] + ([login_key(user_id)] if login else [])
        self.redis.delete(*keys)

    def latest(self, user_id: int) -> dict | None:
        """The user's newest session as remembered: {"token", "id", "labels", "final"},
        "final" its last event (id, payload) once it ended, else None."""
        fields = cast(dict, self.redis.hgetall(latest_key(user_id)))
        if b"token" not in fields:
            return None
        final = None
        if b"final" in fields:
            final = (fields[b"final_id"].decode(), json.loads(fields[b"final"]))
        return {
            "token": fields[b"token"].decode(),
            "id": int(fields[b"id"]),
            "labels": _labels(fields[b"labels"]),
            "final": final,
        }

    def remember_latest(self, user_id: int, token: str, row_id: int, labels: dict) -> None:
        """Remember what the database says is the user's newest session, unless a session
        that started meanwhile was remembered first."""
        self._remember(
            keys=[latest_key(user_id)], args=[token, row_id, json.dumps(labels), LATEST_KEPT]
        )

    def keep_final(self, user_id: int, token: str, event_id: str, payload: str) -> None:
        """Keep how the user's newest session ended, for the streams that open on it."""
        self._final(keys=[latest_key(user_id)], args=[token, event_id, payload])

    def statuses(self, tokens: list[str]) -> list[str | None]:
        """Each session's status as its progress keys have it (None: no keys)."""
        pipe = self.redis.pipeline(transaction=False)
        for token in tokens:
            pipe.hget(session_key(token), "status")
        return [value.decode() if value else None for value in pipe.execute()]

    def update_account(self, token: str, account_id: int, **fields) -> None:
        """Write an account's absolute figures (from the committed checkpoint)."""
        self.redis.hset(account_key(token, account_id), mapping=_account_mapping(fields))

    def record_sample(self, token: str, account_id: int, emails: int) -> None:
        """Remember that `emails` were just processed, for the recent-rate estimate."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(samples_key(token), {f"{account_id}:{now:.6f}:{emails}": now})
        pipe.zremrangebyscore(samples_key(token), "-inf", now - RECENT_WINDOW)
        pipe.expire(samples_key(token), EXPIRE_WHILE_ACTIVE)
        pipe.execute()

    def keep_scan(
        self,
        token: str,
        account_id: int,
        *,
        start: tuple[int | None, int],
        uidvalidity: int,
        uids: list[int],
        reset: bool,
    ) -> None:
        """Keep what counting found from checkpoint `start` (uidvalidity, last UID), so the
        account's job need not scan the folder again (seconds for a large local one)."""
        value = json.dumps(
            {"start": list(start), "uidvalidity": uidvalidity, "uids": uids, "reset": reset}
        )
        self.redis.set(scan_key(token, account_id), value, ex=EXPIRE_WHILE_ACTIVE)

    def take_scan(self, token: str, account_id: int) -> dict | None:
        """What keep_scan kept, once: a job run again after a kill scans for itself."""
        value = cast(bytes | None, self.redis.getdel(scan_key(token, account_id)))
        return json.loads(value) if value else None

    def set_status(self, token: str, status: str, **extra) -> None:
        self.redis.hset(session_key(token), mapping={"status": status, **extra})

    def session_keys(self, token: str) -> list[str]:
        """Every key the contract keeps for a session, named from its accounts' ids (in the
        session's hash): no scan of the keyspace."""
        listed = cast(bytes | None, self.redis.hget(session_key(token), "accounts")) or b""
        ids = [int(i) for i in listed.decode().split(",") if i]
        keys = [session_key(token), events_key(token), samples_key(token)]
        for account_id in ids:
            keys += [account_key(token, account_id), scan_key(token, account_id)]
        return keys

    def forget(self, token: str) -> None:
        """Delete every key of a session now (its owner deleted their account)."""
        self.redis.delete(*self.session_keys(token))

    def finish(self, token: str) -> None:
        """Let the keys of an ended session expire; the database keeps the record."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self.session_keys(token):
            pipe.expire(key, EXPIRE_AFTER_END)
        pipe.execute()

    def announce_start(self, user_id: int, token: str) -> None:
        """Tell every open view of the user that a session started (its stream follows it)."""
        self.redis.publish(CHANNEL, json.dumps({"user": user_id, "started": token}))

    def publish(
        self,
        token: str,
        kind: str = "progress",
        *,
        force: bool = False,
        message: str | None = None,
        now: int | None = None,
    ) -> str | None:
        """Broadcast the current snapshot unless the throttle says not yet; returns its id.

        `now` (epoch ms, default the clock) is when it happens: the throttle's tests move
        it on instead of sleeping.
        """
        snapshot = self.snapshot(token)
        if snapshot is None:
            return None
        published_at = now_ms() if now is None else now
        allowed = self._gate(
            keys=[session_key(token)],
            args=[
                published_at,
                snapshot["processed_emails"],
                "1" if force else "0",
                int(MIN_INTERVAL * 1000),
                BROADCAST_EVERY,
                int(BROADCAST_AFTER * 1000),
            ],
        )
        if not allowed:
            return None
        snapshot["published_at"] = published_at
        payload = json.dumps({"kind": kind, "message": message, "state": snapshot})
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(events_key(token), {"data": payload}, maxlen=EVENTS_KEPT, approximate=True)
        pipe.expire(events_key(token), EXPIRE_WHILE_ACTIVE)
        event_id = pipe.execute()[0].decode()
        if snapshot["status"] in SessionStatus.TERMINAL:
            owner = cast(bytes | None, self.redis.hget(session_key(token), "user"))
            if owner:
                self.keep_final(int(owner), token, event_id, payload)
        self.redis.publish(CHANNEL, event_message(token, event_id, payload))
        metrics.record_broadcast(kind)
        self._keep_halfway_estimate(token, snapshot)
        return event_id

    def _keep_halfway_estimate(self, token: str, state: dict) -> None:
        # The first time remaining shown past half way, graded when the sync ends (metrics).
        if (
            state["status"] == SessionStatus.RUNNING
            and 50 <= state["progress_percentage"] < 100
            and state["time_remaining_seconds"]
        ):
            self.redis.hsetnx(
                session_key(token),
                "eta_halfway",
                f"{time.time():.3f}:{state['time_remaining_seconds']}",
            )

    def halfway_estimate(self, token: str) -> tuple[float, int] | None:
        """(when, seconds) of the first time remaining shown past half way, if any."""
        value = cast(bytes | None, self.redis.hget(session_key(token), "eta_halfway"))
        if not value:
            return None
        made_at, _, seconds = value.decode().partition(":")
        return float(made_at), int(seconds)

    def newest_event(self, token: str) -> tuple[str, dict] | None:
        """The session's newest event (id, payload), if any is kept."""
        newest = cast(list, self.redis.xrevrange(events_key(token), count=1))
        if not newest:
            return None
        entry_id, fields = newest[0]
        return entry_id.decode(), json.loads(fields[b"data"])

    # -- reads ----------------------------------------------------------------------------

    def snapshot(self, token: str) -> dict | None:
        """The session's current state in the shape of status.json, or None if unknown."""
        session = _decode(cast(dict, self.redis.hgetall(session_key(token))))
        if not session:
            return None
        ids = [int(i) for i in session.get("accounts", "").split(",") if i]
        pipe = self.redis.pipeline(transaction=False)
        for account_id in ids:
            pipe.hgetall(account_key(token, account_id))
        pipe.zrangebyscore(samples_key(token), time.time() - RECENT_WINDOW, "+inf")
        *rows, samples = pipe.execute()
        accounts = [
            account_state(account_id, _decode(row))
            for account_id, row in zip(ids, rows, strict=True)
        ]
        state = build_state(
            session.get("status", SessionStatus.PENDING),
            accounts,
            started_at_ms=int(session.get("started_at") or 0),
            samples=[s.decode() for s in samples],
            counting=session.get("counting") == "1",
            finished_at_ms=int(session.get("finished_at") or 0) or None,
        )
        state["published_at"] = int(session.get("published_at") or 0) or None
        state["trigger"] = session.get("trigger") or "manual"
        return state

    def events_after(self, token: str, last_id: str) -> list[tuple[str, dict]] | None:
        """Events newer than last_id, or None when last_id fell out of the kept window."""
        key = events_key(token)
        oldest = cast(list, self.redis.xrange(key, count=1))
        # Gone, trimmed past last_id, or last_id is not an id we ever sent (None).
        if not oldest or newer(last_id, oldest[0][0].decode()) is not False:
            return None
        entries = cast(list, self.redis.xrange(key, min=f"({last_id}", max="+"))
        return [(entry_id.decode(), json.loads(fields[b"data"])) for entry_id, fields in entries]


def build_state(
    status: str,
    accounts: list[dict],
    *,
    started_at_ms: int = 0,
    samples: Sequence[str] = (),
    now: float | None = None,
    counting: bool = False,
    finished_at_ms: int | None = None,
) -> dict:
    """Aggregate account figures into the session state (also used from the database).

    While `counting`, the state's "counting" says how many accounts' mail is counted so far
    ("done") of how many ("total"): until then the bar's total is not known.
    """
    processed = sum(a["processed_emails"] for a in accounts)
    total = sum(a["total_emails"] for a in accounts)
    counted = sum(
        1 for a in accounts if a.get("counted") or a.get("status") != AccountStatus.PENDING
    )
    return {
        "status": status,
        "progress_percentage": percentage(processed, total, status),
        "processed_emails": processed,
        "total_emails": total,
        "detected_expenses": sum(a["detected_expenses"] for a in accounts),
        "error_count": sum(a["error_count"] for a in accounts),
        "time_remaining_seconds": time_remaining(
            processed, total, started_at_ms / 1000 if started_at_ms else None, samples, now=now
        )
        if status == SessionStatus.RUNNING
        else None,
        "failed_accounts": sum(1 for a in accounts if a.get("status") == AccountStatus.FAILED),
        "counting": {"done": counted, "total": len(accounts)} if counting else None,
        "finished_at": finished_at_ms,
        "accounts": accounts,
        "published_at": None,
    }


def percentage(processed: int, total: int, status: str) -> int:
    if total <= 0:
        return 100 if status == SessionStatus.COMPLETED else 0
    return min(100, processed * 100 // total)


def time_remaining(
    processed: int,
    total: int,
    started_at: float | None,
    samples: Iterable[str],
    *,
    now: float | None = None,
) -> int | None:
    """Seconds left: 0.7 x the rate of the last five minutes + 0.3 x the overall rate."""
    now = time.time() if now is None else now
    remaining = max(0, total - processed)
    if not started_at or processed <= 0 or now <= started_at:
        return None
    if remaining == 0:
        return 0
    overall = processed / (now - started_at)
    points = [(float(ts), int(n)) for _, ts, n in (s.split(":") for s in samples)]
    recent = overall
    if points:
        first = min(ts for ts, _ in points)
        # The first sample's emails were processed before its timestamp: count from the start
        # of the window or of the sync, whichever is later.
        span = now - max(now - RECENT_WINDOW, started_at, first - 1)
        recent = sum(n for _, n in points) / max(span, 1e-3)
    rate = 0.7 * recent + 0.3 * overall
    return int(round(remaining / rate)) if rate > 0 else None


def _account_mapping(fields: dict) -> dict:
    mapping = {}
    for name in ACCOUNT_FIELDS:
        if name in fields:
            value = fields[name]
            mapping[name] = "" if value is None else value
    if "id" in fields:
        mapping.setdefault("status", AccountStatus.PENDING)
    return mapping


def account_state(account_id: int, row: dict) -> dict:
    """One account's figures in the status.json shape, from its hash (or the same fields)."""
    processed, total = (int(row.get(name) or 0) for name in ("processed", "total"))
    status = row.get("status") or AccountStatus.PENDING
    return {
        "id": account_id,
        "bank": row.get("bank") or "",
        "status": status,
        "processed_emails": processed,
        "total_emails": total,
        "progress_percentage": percentage(processed, total, status),
        "detected_expenses": int(row.get("detected") or 0),
        "error_count": int(row.get("errors") or 0),
        "error_kind": row.get("error_kind") or None,
        "error_message": row.get("error_message") or None,
        "counted": bool(row.get("counted")),
    }


def _decode(row: dict) -> dict:
    return {k.decode(): v.decode() for k, v in row.items()}


def _labels(value: bytes) -> dict[int, str]:
    return {int(account_id): address for account_id, address in json.loads(value).items()}


def event_message(token: str, event_id: str, payload: str) -> str:
    """An event as CHANNEL carries it: "<token> <event id> <payload JSON>". Web processes
    read the token and skip the payload of a session nobody there watches; notices (a
    session started) are JSON objects."""
    return f"{token} {event_id} {payload}"


def newer(previous: str, current: str) -> bool | None:
    """Whether event id current comes after previous; None if either is not an event id."""
    try:
        return _id_tuple(current) > _id_tuple(previous)
    except ValueError:
        return None


def _id_tuple(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)
