"""The event stream: framing, snapshot first, ids, replay, heartbeat, end, isolation, limits."""

import re
import time

import pytest
from helpers import csrf_token
from helpers import sse_events as events
from selectolax.lexbor import LexborHTMLParser

from expense_sync import gevent_support
from expense_sync.extensions import db, get_redis
from expense_sync.models import EmailAccount, SyncSession, User
from expense_sync.progress import Progress, now_ms
from expense_sync.sync import control, feed, stream


@pytest.fixture
def running(app, auth, client, tmp_path):
    """A logged-in user with a started (not yet worked) sync of two accounts."""
    auth.create()
    auth.login()
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        for bank in ("bac", "promerica"):
            db.session.add(
                EmailAccount(
                    user_id=user.id,
                    bank=bank,
                    address=f"{bank}@x.cr",
                    source_kind="maildir",
                    local_path=str(tmp_path),
                )
            )
        db.session.commit()
        session = control.start(user)
        return session.token


@pytest.fixture(autouse=True)
def quick_heartbeat(monkeypatch):
    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.3)


def open_stream(client, token, **headers):
    return client.get(f"/sync_sessions/{token}/stream", headers=headers, buffered=False)


def publish(
    app,
    token,
    account_id=1,
    processed=0,
    total=100,
    status="processing",
    session_status=None,
    force=True,
):
    with app.app_context():
        progress = Progress(get_redis())
        if session_status:
            progress.set_status(token, session_status)
        progress.update_account(token, account_id, status=status, processed=processed, total=total)
        return progress.publish(token, "progress", force=force)


def data_attr(html, name):
    return re.search(rf'data-{name}="([^"]*)"', html).group(1)


def test_snapshot_first_multiline_framing_and_increasing_ids(app, client, running):
    response = open_stream(client, running)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert "Access-Control-Allow-Origin" not in response.headers
    stream_events = events(response)
    first_id, kind, html = next(stream_events)
    assert kind == "message" and html.count("\n") > 20
    assert html.lstrip().startswith('<section id="sync-widget"')
    assert data_attr(html, "status") == "pending"
    ids = [first_id]
    for processed in (10, 20, 30):
        publish(app, running, processed=processed, session_status="running")
        event_id, kind, html = next(e for e in stream_events if e[0] != "comment")
        assert data_attr(html, "processed") == str(processed)
        assert data_attr(html, "published-at").isdigit()
        ids.append(event_id)
    # Numbered within the session: a reconnect's Last-Event-ID says which sync it saw.
    assert all(i.startswith(f"{running}:") for i in ids)
    as_tuples = [tuple(map(int, i.rpartition(":")[2].split("-"))) for i in ids]
    assert as_tuples == sorted(as_tuples) and len(set(ids)) == 4


def test_last_event_id_replays_missed_events(app, client, running):
    first = publish(app, running, processed=1, session_status="running")
    publish(app, running, processed=2)
    publish(app, running, processed=3)
    stream_events = events(open_stream(client, running, **{"Last-Event-ID": first}))
    replayed = [data_attr(next(stream_events)[2], "processed") for _ in range(2)]
    assert replayed == ["2", "3"]


def test_last_event_id_of_the_session_or_of_another_one(app, client, running):
    first = publish(app, running, processed=1, session_status="running")
    publish(app, running, processed=2)
    own = events(open_stream(client, running, **{"Last-Event-ID": f"{running}:{first}"}))
    assert data_attr(next(own)[2], "processed") == "2"
    other = events(open_stream(client, running, **{"Last-Event-ID": f"someone-else:{first}"}))
    assert data_attr(next(other)[2], "status") == "running"  # a snapshot, not a replay
    assert feed.position_in(running, f"{running}:{first}") == first
    assert feed.position_in(running, first) == first
    assert feed.position_in(running, f"x:{first}") is None


def test_unknown_or_expired_last_event_id_gets_a_snapshot(app, client, running):
    publish(app, running, processed=7, session_status="running")
    for stale in ("1-0", "not-an-id"):
        event_id, kind, html = next(
            events(open_stream(client, running, **{"Last-Event-ID": stale}))
        )
        assert kind == "message" and data_attr(html, "processed") == "7"


def test_heartbeat_and_clean_end_after_terminal_event(app, client, running):
    stream_events = events(open_stream(client, running))
    next(stream_events)
    assert next(stream_events) == ("comment", ": heartbeat")
    publish(app, running, processed=100, status="completed", session_status="completed")
    rest = [e for e in stream_events if e[0] != "comment"]
    assert len(rest) == 1 and data_attr(rest[0][2], "status") == "completed"
    # Rendered once for every browser of the user: no one session's CSRF token in it (the
    # form posts with the page's X-CSRFToken header).
    assert 'id="sync-start"' in rest[0][2] and 'name="csrf_token"' not in rest[0][2]


def test_anonymous_gets_401_and_another_user_404(app, client, running):
    anonymous = app.test_client()
    assert anonymous.get(f"/sync_sessions/{running}/stream").status_code == 401
    intruder = app.test_client()
    from helpers import AuthActions

    other = AuthActions(app, intruder)
    other.create("otro@example.cr")
    other.login("otro@example.cr")
    assert intruder.get(f"/sync_sessions/{running}/stream").status_code == 404
    assert intruder.get(f"/sync_sessions/{running}/status.json").status_code == 404
    assert intruder.get("/sync_sessions/no-such-token/stream").status_code == 404


def test_foreign_origin_is_refused(client, running):
    response = open_stream(client, running, Origin="https://evil.example")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert open_stream(client, running, Origin="http://localhost").status_code == 200


def test_eleventh_subscription_in_a_minute_gets_429(client, running):
    for _ in range(10):
        response = open_stream(client, running)
        assert response.status_code == 200
        response.close()
    refused = open_stream(client, running)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


def test_progress_broadcasts_at_most_once_per_second(app, running):
    with app.app_context():
        progress = Progress(get_redis())
        progress.set_status(running, "running")
        # A second past the start's own broadcast, then 2.5 s of the clock, every 10 ms.
        start, sent, processed = now_ms() + 1000, [], 0
        for at in range(start, start + 2500, 10):
            processed += 150  # past the 100-email mark every time
            progress.update_account(running, 1, processed=processed, total=10**6)
            if progress.publish(running, now=at):
                sent.append(at)
        assert sent == [start, start + 1000, start + 2000]
        # State changes are never held back.
        assert progress.publish(running, "state", force=True, now=start + 2010)


def test_progress_waits_for_100_emails_or_5_seconds(app, running):
    with app.app_context():
        progress = Progress(get_redis())
        start = now_ms()
        assert progress.publish(running, "state", force=True, now=start)
        progress.update_account(running, 1, processed=50, total=1000)
        assert progress.publish(running, now=start + 1050) is None  # 50 emails and 1 s: not yet
        progress.update_account(running, 1, processed=100, total=1000)
        sent = progress.publish(running, now=start + 1100)
        assert sent is not None
        progress.update_account(running, 1, processed=110, total=1000)
        assert progress.publish(running, now=start + 6000) is None  # 10 emails, 4.9 s
        assert progress.publish(running, now=start + 6100) is not None  # 5 s since the last


def test_status_json_shape(client, running):
    state = client.get(f"/sync_sessions/{running}/status.json").json
    assert set(state) >= {
        "status",
        "progress_percentage",
        "processed_emails",
        "total_emails",
        "detected_expenses",
        "error_count",
        "time_remaining_seconds",
        "accounts",
    }
    assert [a["bank"] for a in state["accounts"]] == ["BAC San José", "Promerica"]


def test_pause_and_resume_render_the_widget(app, client, running):
    with app.app_context():
        session = db.session.execute(db.select(SyncSession)).scalar_one()
        session.status = "running"
        db.session.commit()
    token = csrf_token(client, "/sync")
    html = client.post(
        f"/sync_sessions/{running}/pause", headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    assert 'data-status="paused"' in html.get_data(as_text=True)
    assert "Reanudar" in html.get_data(as_text=True)
    html = client.post(
        f"/sync_sessions/{running}/resume", headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    assert 'data-status="running"' in html.get_data(as_text=True)


def test_redis_restart_mid_stream_converges(app, running):
    """A Redis without persistence restarts: the stream resyncs from the database, goes on."""
    from servers import RedisServer

    from expense_sync import create_app

    with RedisServer() as own_redis:
        restarted = create_app(
            {**app.config, "REDIS_URL": own_redis.url, "RATELIMIT_STORAGE_URI": own_redis.url}
        )
        client = restarted.test_client()
        from helpers import AuthActions

        AuthActions(restarted, client).login()
        with restarted.app_context():
            session = db.session.execute(db.select(SyncSession)).scalar_one()
            session.status = "running"
            db.session.commit()
            from expense_sync.progress_rows import seed_progress

            seed_progress(session)
        stream_events = events(open_stream(client, running))
        next(stream_events)
        hub = restarted.extensions["event_hub"]
        with restarted.app_context():
            row = db.session.execute(db.select(SyncSession)).scalar_one().accounts[0]
            row.processed_emails, row.total_emails = 42, 84
            db.session.commit()
        own_redis.restart()
        converged = next(e for e in stream_events if e[0] != "comment")
        assert data_attr(converged[2], "processed") == "42"
        assert data_attr(converged[2], "total") == "84"
        assert hub.connected.wait(5)
        with restarted.app_context():  # what the worker does on its next batch
            from expense_sync.progress_rows import seed_progress

            seed_progress(db.session.execute(db.select(SyncSession)).scalar_one())
        publish(restarted, running, processed=60, total=84)
        after = next(e for e in stream_events if e[0] != "comment")
        assert data_attr(after[2], "processed") == "60"
        hub.close()


def test_streams_of_one_session_share_each_rendered_event(app, client, running, monkeypatch):
    """One render per event per process, whatever the number of tabs watching."""
    rendered = []
    frame = feed.WidgetFeed.frame

    def counting(self, event_id, payload):
        rendered.append(event_id)
        return frame(self, event_id, payload)

    monkeypatch.setattr(feed.WidgetFeed, "frame", counting)
    responses = [open_stream(client, running) for _ in range(3)]
    readers = [events(response) for response in responses]
    for reader in readers:
        next(reader)  # each stream's own snapshot
    rendered.clear()
    event_id = publish(app, running, processed=5, session_status="running")
    received = [next(e for e in reader if e[0] != "comment") for reader in readers]
    assert [e[0] for e in received] == [f"{running}:{event_id}"] * 3
    assert len({e[2] for e in received}) == 1
    assert rendered == [event_id]
    hub = app.extensions["event_hub"]
    assert running in hub._topics
    for response in responses:
        response.close()
    assert running not in hub._topics


def apply_out_of_band(page: str, update: str, event_id: str) -> str:
    """What the page does with an update's parts: they start from the state it shows, and
    each one takes the place of its element; the widget then shows the update's event."""
    doc = LexborHTMLParser(page)
    widget = doc.css_first("#sync-widget")
    assert re.match(r"<!--base:([^>]*)-->", update).group(1) == widget.attributes["data-event"]
    for part in LexborHTMLParser(update).css("[hx-swap-oob]"):
        assert part.attributes["hx-swap-oob"] == "outerMorph"
        del part.attrs["hx-swap-oob"]
        doc.css_first(f"#{part.id}").replace_with(part)
    widget.attrs["data-event"] = event_id.rpartition(":")[2]
    return widget.html


def same_markup(html: str) -> str:
    return re.sub(r">\s+<", "><", LexborHTMLParser(html).css_first("#sync-widget").html)


def test_after_the_whole_widget_an_update_sends_only_the_parts_that_changed(app, client, running):
    stream_events = events(open_stream(client, running))
    next(stream_events)
    publish(app, running, processed=10, session_status="running")  # a new status: whole
    last_id, _, page = next(e for e in stream_events if e[0] != "comment")
    assert page.startswith('<section id="sync-widget"')
    for before, processed in ((10, 20), (20, 30), (30, 45), (45, 45)):
        publish(app, running, processed=processed)
        event_id, _, update = next(e for e in stream_events if e[0] != "comment")
        assert not update.startswith("<section") and len(update.encode()) <= 1024
        assert 'id="sync-progress"' in update  # published-at: each update has its bar
        assert "sync-account-2" not in update  # only the account that moved
        assert ('id="sync-account-1-count"' in update) is (processed != before)
        page = apply_out_of_band(page, update, event_id)
        # The same event, whole, as a stream that missed the one before gets it.
        replay = events(open_stream(client, running, **{"Last-Event-ID": last_id}))
        replayed_id, _, whole = next(replay)
        assert replayed_id == event_id and same_markup(page) == same_markup(whole)
        last_id = event_id
    assert data_attr(page, "processed") == "45" and 'id="sync-processed">45<' in page
    publish(app, running, session_status="paused")
    assert next(e for e in stream_events if e[0] != "comment")[2].startswith("<section")


def test_frames_carry_no_indentation(client, running):
    raw = next(iter(open_stream(client, running).response))
    assert raw.startswith(b"id: ") and b"\ndata: <section" in raw
    assert b"\ndata:  " not in raw and b"\ndata: \n" not in raw


def test_head_answers_without_opening_a_stream(app, client, running):
    response = client.head(f"/sync_sessions/{running}/stream")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.get_data() == b""
    assert running not in app.extensions.get("event_hub", stream.get_hub(app))._topics


def test_a_stream_far_behind_skips_to_the_newest_frames():
    from expense_sync.events import RECENT_FRAMES, Topic

    class Feed:
        def frame(self, event_id, payload):
            return event_id.encode()

        def delta(self, event_id, base_id, before, payload):
            return None

    topic = Topic("t", Feed())
    state = {"status": "running", "published_at": None}
    for n in range(1, RECENT_FRAMES + 3):
        topic.add(f"{n}-0", {"state": state})
    assert [f.event_id for f in topic.since(RECENT_FRAMES + 1)] == [f"{RECENT_FRAMES + 2}-0"]
    kept = topic.since(0)  # fell out of the kept window: what is left, newest last
    assert len(kept) == RECENT_FRAMES and kept[-1].event_id == f"{RECENT_FRAMES + 2}-0"
    assert topic.since(topic.seq) == []
    assert topic.last_id == f"{RECENT_FRAMES + 2}-0"


def test_a_frame_carries_the_changes_to_a_browser_that_shows_its_base_only():
    from expense_sync.events import Topic

    rendered = []

    class Feed:
        def frame(self, event_id, payload):
            rendered.append(event_id)
            return b"whole " + event_id.encode()

        def delta(self, event_id, base_id, before, payload):
            return b"delta %d-%d" % (before["n"], payload["state"]["n"])

    def state(n):
        return {"status": "running", "published_at": None, "n": n}

    topic = Topic("t", Feed())
    topic.add("1-0", {"state": state(1)})  # nothing to start from: the whole widget
    topic.add("2-0", {"state": state(2)})
    first, second = topic.since(0)
    assert first.after(None) == b"whole 1-0" and second.after("1-0") == b"delta 1-2"
    assert rendered == ["1-0"]  # a delta renders its whole frame only when one is needed
    assert second.after("0-5") == second.after(None) == b"whole 2-0" and rendered == ["1-0", "2-0"]
    topic.add("1-5", {"state": state(15)})  # late and older: the next delta does not start from it
    topic.add("3-0", {"state": state(3)})
    assert topic.since(3)[0].after("2-0") == b"delta 2-3"
    topic.opened("4-0", state(4))  # a stream opened on a newer state than the topic's
    topic.add("5-0", {"state": state(5)})
    assert topic.since(4)[0].after("4-0") == b"delta 4-5"
    topic.add("6-0", {"state": state(6)}, reset=True)  # a snapshot after a gap: whole
    assert topic.since(5)[0].after("5-0") == b"whole 6-0"


APART = """
from gevent import monkey
monkey.patch_all()
import gevent
from expense_sync.gevent_support import streams_apart
seen = {}
def app(environ, start_response):
    seen[environ["PATH_INFO"]] = gevent.getcurrent()
    return [b"ok"]
wrapped = streams_apart(app)
for path in ("/sync_sessions/t/stream", "/sync"):
    assert wrapped({"PATH_INFO": path}, None) == [b"ok"]
print(wrapped is not app, seen["/sync_sessions/t/stream"] is not gevent.getcurrent(),
      seen["/sync"] is gevent.getcurrent())
"""


def test_under_gevent_a_stream_request_runs_in_a_greenlet_of_its_own():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", APART], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True", "True", "True"]

    def app(environ, start_response):
        return []

    assert gevent_support.streams_apart(app) is app  # this process is not patched: nothing to do


def test_after_a_reconnect_one_failing_session_does_not_hold_up_the_others(redis_url):
    from expense_sync.events import Hub

    class Feed:
        def __init__(self, fails):
            self.fails = fails

        def frame(self, event_id, payload):
            return event_id.encode()

        def catch_up(self, last_id):
            if self.fails:
                raise LookupError("that session is gone")
            return [("9-0", {"state": {"status": "running"}}, True)]

    hub = Hub(redis_url)
    try:
        broken = hub.subscribe("broken", Feed(fails=True))
        healthy = hub.subscribe("healthy", Feed(fails=False))
        assert hub.connected.is_set() and healthy.seq == 0
        hub._pubsub.connection.disconnect()  # what a Redis restart does to the reader
        deadline = time.monotonic() + 10
        while healthy.seq == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [f.event_id for f in healthy.since(0)] == ["9-0"] and healthy.since(0)[0].reset
        assert broken.seq == 0
        assert hub.connected.wait(5)
    finally:
        hub.close()


def test_a_stream_closed_before_its_first_write_still_unsubscribes(app, client, running):
    hub = stream.get_hub(app)
    response = open_stream(client, running)
    assert response.status_code == 200 and running in hub._topics
    response.close()  # e.g. the client went away before the server wrote anything
    assert running not in hub._topics


def test_a_sync_that_ends_live_says_when_it_ended(app, client, running):
    """The stream opened while it ran; its final frame still says "Terminó hace…"."""
    from expense_sync.progress import now_ms

    stream_events = events(open_stream(client, running))
    assert "Terminó" not in next(stream_events)[2]
    with app.app_context():
        Progress(get_redis()).set_status(running, "completed", finished_at=now_ms())
    publish(app, running, processed=100, status="completed")
    final = next(e for e in stream_events if e[0] != "comment")
    assert data_attr(final[2], "status") == "completed"
    assert "Terminó hace" in final[2]


def sse_fields(raw: bytes) -> list[tuple[str, str]]:
    """The fields of an SSE body as a browser splits it: at CR, LF or CRLF."""
    lines = re.split(r"\r\n|\r|\n", raw.decode())
    return [tuple(line.partition(":")[::2]) for line in lines if line]


def test_a_line_break_in_any_value_cannot_add_an_event(app, client, running):
    forged = "servidor\rid: 9-9\revent: toast\r\ndata: <b>falso</b>\nevent: x"
    with app.app_context():
        progress = Progress(get_redis())
        progress.update_account(running, 1, status="failed", error_message=forged)
        progress.publish(running, "state", force=True, message=forged)
    response = open_stream(client, running, **{"Last-Event-ID": "0-1"})
    raw = b"".join(chunk for chunk, _ in zip(response.response, range(3), strict=False))
    response.close()
    fields = sse_fields(raw)
    assert {name for name, _ in fields} <= {"id", "event", "data", ""}
    assert [value.strip() for name, value in fields if name == "event"].count("toast") <= 1
    assert all(value.strip() != "9-9" for name, value in fields if name == "id")
    assert [value.strip() for name, value in fields if name == "event"] in ([], ["toast"])


def test_sse_data_lines_for_every_kind_of_break():
    assert feed.sse_data("a\rb\r\nc\nd") == "data: a\ndata: b\ndata: c\ndata: d\n"


def test_past_the_cap_the_oldest_stream_is_told_to_poll_and_ends(app, client, running):
    app.config["MAX_STREAMS_PER_USER"] = 2
    responses = [open_stream(client, running) for _ in range(3)]
    readers = [events(response) for response in responses]
    for reader in readers:
        assert next(reader)[1] == "message"
    oldest = [event for event in readers[0] if event[0] != "comment"]
    assert oldest == [(None, "closed", "polling")]  # and then the stream ended
    assert next(readers[2])[0] == "comment"  # the newer ones stay open (heartbeats)
    for response in responses:
        response.close()
