// Keeps the sync widget live; htmx does the transport. In the tab that leads, #sync-live is
// an hx-sse element: htmx's SSE extension reads the user's event stream, reconnects with
// backoff and jitter, sends Last-Event-ID and morphs every fragment into #sync-widget:
// the whole widget first, then only the parts that changed (out-of-band swaps).
// While the stream is down, #sync-poll polls the same fragment (hx-trigger "every").
//
// This file does what htmx has no attribute for. One tab per browser holds the stream (a
// Web Lock decides which) and shares every fragment with the other tabs (BroadcastChannel),
// so any number of tabs stay live within HTTP/1.1's six connections per site. It tells a
// live stream from a silent one (the stream opens with a heartbeat event and sends one
// every 15 s), turns polling on and off and sets its pace, holds a hidden tab's updates
// until it is shown, and drives the connection banner and toasts from htmx's events.
//
// Connection states: live (stream), polling (stream down, polls answer: the widget is still
// current, so no banner), reconnecting, lost (nothing answered MAX_FAILURES times), offline.
(function () {
  "use strict";

  var MAX_FAILURES = 5;
  var MAX_DELAY = 30000;            // reopening a stream whose first request was refused
  var FIRST_EVENT_TIMEOUT = 8000;   // a buffering proxy shows up as silence after the headers
  var SILENCE_TIMEOUT = 40000;      // the server sends a heartbeat every 15 s
  var FOLLOWER_WATCHDOG = 20000;
  var POLL_FAST = "2s";             // while a sync runs
  var POLL_SLOW = "10s";            // otherwise: a sync started elsewhere shows up within that
  var ALIVE_EVERY = 10000;          // how often the leading tab tells the others it streams
  var WHOLE = '<section id="sync-widget"';   // how a fragment of the whole widget starts

  function toast(text, kind) {
    var box = document.getElementById("toasts");
    if (!box || !text) return;
    var item = document.createElement("div");
    item.className = "toast toast-" + (kind || "info");
    item.setAttribute("role", "status");
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 5000);
  }

  function WidgetController(panel) {
    this.panel = panel;
    this.live = document.getElementById("sync-live");
    this.poller = document.getElementById("sync-poll");
    this.failures = 0;
    this.timers = {};
    this.aliveAt = 0;
    this.pending = null;
    this.sharing = null;        // the event id of the parts being swapped in: share the result
    this.leader = false;
    this.stopped = false;
    this.connection = "idle";
    this.pollsAnswer = false;   // whether the last poll answered
    this.pace = null;           // the polling interval while polling, else null
    this.listeners = [];
    // Tabs of one browser share a stream only when they show the same user's widget (a
    // test, or someone who signed in as another user in another tab).
    var key = panel.dataset.user || "";
    this.lockName = "sync-stream-" + key;
    this.channel = "BroadcastChannel" in window ? new BroadcastChannel("sync-widget-" + key) : null;
    if (this.channel) this.channel.onmessage = this.onShared.bind(this);
    // On the panel: #sync-live is replaced when its stream is dropped, the panel stays.
    this.listen(panel, "htmx:sse:after:connection", this.onConnected.bind(this));
    this.listen(panel, "htmx:sse:before:connection", this.onReconnecting.bind(this));
    this.listen(panel, "htmx:sse:before:message", this.onMessage.bind(this));
    this.listen(panel, "htmx:after:request", this.onAnswer.bind(this));
    this.listen(panel, "htmx:error", this.onRequestError.bind(this));
    this.listen(panel, "toast", this.onToast.bind(this));
    this.listen(panel, "closed", this.onReplaced.bind(this));
    this.listen(panel, "htmx:after:swap", this.onSwapped.bind(this));
    this.listen(document, "visibilitychange", this.onVisibility.bind(this));
    this.listen(window, "online", this.onOnline.bind(this));
    this.listen(window, "offline", this.onOffline.bind(this));
    var retry = document.getElementById("sync-connection-retry");
    if (retry) this.listen(retry, "click", this.retryNow.bind(this));
    window.syncWidget = this;   // lets tests and the benchmark observe the controller
    this.elect();
  }

  WidgetController.prototype.listen = function (target, name, handler) {
    target.addEventListener(name, handler);
    this.listeners.push([target, name, handler]);
  };

  WidgetController.prototype.widget = function () {
    return document.getElementById("sync-widget");
  };

  WidgetController.prototype.status = function () {
    var progress = document.getElementById("sync-progress");
    return progress ? progress.dataset.status : null;
  };

  WidgetController.prototype.elect = function () {
    var self = this;
    if (!navigator.locks) { this.lead(); return; }
    this.lockAbort = new AbortController();
    navigator.locks.request(this.lockName, { signal: this.lockAbort.signal },
      function () { return self.lead(); }).catch(function () {});
    this.watchFollower();
  };

  // Resolves when this tab stops leading, which releases the lock to the next tab.
  WidgetController.prototype.lead = function () {
    var self = this;
    this.leader = true;
    clearTimeout(this.timers.follower);
    return new Promise(function (resolve) {
      self.releaseLead = resolve;
      self.openStream();
    });
  };

  WidgetController.prototype.watchFollower = function () {
    var self = this;
    clearTimeout(this.timers.follower);
    if (this.leader || this.stopped) return;
    this.timers.follower = setTimeout(function () {
      // No word from the leading tab for a while: check for ourselves.
      self.pollOnce();
      self.watchFollower();
    }, FOLLOWER_WATCHDOG);
  };

  // --- The stream (hx-sse on #sync-live) ---

  // Opens the stream from what the widget shows now: the server sends nothing again that
  // the page already shows. Once open, htmx reconnects by itself with Last-Event-ID.
  WidgetController.prototype.openStream = function () {
    if (this.stopped || this.evicted) return;
    if (navigator.onLine === false) { this.onOffline(); return; }
    clearTimeout(this.timers.reopen);
    this.dropStream();
    var url = new URL(this.live.getAttribute("hx-sse:connect"), location.href);
    var widget = this.widget();
    var shown = widget ? widget.dataset.token : null;
    url.search = "";
    if (shown) url.searchParams.set("shown", shown);
    if (shown && ["completed", "failed"].indexOf(this.status()) !== -1) {
      url.searchParams.set("ended", "1");
    }
    this.live.setAttribute("hx-sse:connect", url.pathname + url.search);
    htmx.process(this.live);
    htmx.trigger(this.live, "sync:lead");
  };

  // htmx's SSE extension stops for good only when its element leaves the page: the element
  // is closed (htmx's cleanup aborts the request) and a fresh copy takes its place. Every
  // opening uses a fresh copy, processed once, so no element ever holds two streams.
  WidgetController.prototype.dropStream = function () {
    clearTimeout(this.timers.silence);
    var old = this.live;
    var fresh = old.cloneNode(false);
    fresh.removeAttribute("data-htmx-powered");
    htmx.trigger(old, "htmx:abort");   // an opening still waiting for its headers
    htmx.process(old, true);
    old.replaceWith(fresh);
    this.live = fresh;
  };

  WidgetController.prototype.fromStream = function (event) {
    return event.target === this.live;
  };

  WidgetController.prototype.onConnected = function (event) {
    if (this.fromStream(event)) this.armSilence(FIRST_EVENT_TIMEOUT);
  };

  // htmx reconnects after the stream ended or failed: each try is a failure until an event
  // comes (a reconnect that answers but never sends one is no better).
  WidgetController.prototype.onReconnecting = function (event) {
    if (!this.fromStream(event) || !event.detail.connection.attempt) return;
    this.failed();
  };

  WidgetController.prototype.onMessage = function (event) {
    if (!this.fromStream(event)) return;
    var message = event.detail.message;
    this.armSilence(SILENCE_TIMEOUT);
    this.setConnection("live");
    this.tellAlive();
    if (message.event) return;   // heartbeat; toast and closed come as DOM events
    if (!this.leader) this.watchFollower();
    if (message.data.lastIndexOf(WHOLE, 0) !== 0) {
      // Only the parts that changed since the stream's last event: htmx swaps them in out
      // of band, hidden or not, as the next ones start from them; the other tabs get the
      // whole widget once they are in.
      if (this.pending) { var html = this.pending; this.pending = null; this.apply(html); }
      var base = /^<!--base:([^>]*)-->/.exec(message.data);
      var widget = this.widget();
      if (!base || !widget || widget.dataset.event !== base[1]) {
        // The page shows another state than the one they start from (a poll or a button
        // answered meanwhile): a fresh stream opens with the whole widget instead.
        event.detail.cancelled = true;
        event.preventDefault();
        this.openStream();
        return;
      }
      this.sharing = (message.id || "").slice((message.id || "").lastIndexOf(":") + 1);
      return;
    }
    // The whole widget: htmx morphs it in here, unless the tab is hidden.
    if (this.channel) this.channel.postMessage({ type: "widget", html: message.data });
    if (document.hidden) {
      this.pending = message.data;
      event.detail.cancelled = true;
      event.preventDefault();
    }
  };

  WidgetController.prototype.onToast = function (event) {
    if (!this.fromStream(event)) return;
    this.share({ type: "toast", text: event.detail.data });
  };

  // The server closed this stream for a newer one of the same user (its per-user cap):
  // polling keeps the widget current, and the stream is not reopened (that would close
  // another one in turn).
  WidgetController.prototype.onReplaced = function (event) {
    if (!this.fromStream(event)) return;
    this.evicted = true;
    clearTimeout(this.timers.silence);
    clearTimeout(this.timers.reopen);
    this.pollsAnswer = true;
    this.startPolling();
    this.setConnection("polling");
  };

  // The opening request answered without a stream (a 429, a login page): htmx's SSE
  // extension reconnects only streams it has seen open, so this one is retried here.
  WidgetController.prototype.onAnswer = function (event) {
    if (event.target === this.poller) { this.onPolled(event); return; }
    if (this.fromStream(event)) this.refused();
  };

  WidgetController.prototype.onRequestError = function (event) {
    if (event.target === this.poller) this.polled(false);
    else if (this.fromStream(event)) this.refused();
  };

  WidgetController.prototype.refused = function () {
    var self = this;
    this.failed();
    var delay = Math.min(Math.pow(2, this.failures) * 1000 + Math.random() * 1000, MAX_DELAY);
    clearTimeout(this.timers.reopen);
    this.timers.reopen = setTimeout(function () { self.openStream(); }, delay);
  };

  // Nothing came for too long on an open stream: it is dropped and opened again.
  WidgetController.prototype.armSilence = function (ms) {
    var self = this;
    clearTimeout(this.timers.silence);
    this.timers.silence = setTimeout(function () { self.dropStream(); self.refused(); }, ms);
  };

  WidgetController.prototype.failed = function () {
    if (this.stopped) return;
    clearTimeout(this.timers.silence);
    this.failures += 1;
    this.startPolling();
    this.setConnection(this.degraded());
  };

  // Heartbeats say nothing to the page, but an idle stream sends nothing else: the other
  // tabs hear now and then that it is alive, or they would poll for themselves.
  WidgetController.prototype.tellAlive = function () {
    var now = Date.now();
    if (!this.channel || now - this.aliveAt < ALIVE_EVERY) return;
    this.aliveAt = now;
    this.channel.postMessage({ type: "alive" });
  };

  // --- Sharing with the other tabs ---

  // Other tabs first: applying a final state here ends nothing, but keeps the order.
  WidgetController.prototype.share = function (message) {
    if (this.channel) this.channel.postMessage(message);
    this.onShared({ data: message });
  };

  WidgetController.prototype.onShared = function (event) {
    var message = event.data;
    if (!this.leader) {
      this.watchFollower();
      // The leading tab's word: the widget is current, whatever this tab's last poll said.
      if (this.connection !== "idle") this.setConnection("idle");
    }
    if (message.type === "toast") { if (!document.hidden) toast(message.text, "warning"); return; }
    if (message.type !== "widget") return;
    if (document.hidden) { this.pending = message.html; return; }
    this.apply(message.html);
  };

  WidgetController.prototype.apply = function (html) {
    var widget = this.widget();
    if (widget) htmx.swap({ sourceElement: widget, target: widget, text: html, swap: "outerMorph" });
  };

  // --- Polling (hx-get on #sync-poll) ---

  WidgetController.prototype.startPolling = function () {
    if (this.stopped) return;
    this.setPace(this.status() === "running" ? POLL_FAST : POLL_SLOW);
  };

  WidgetController.prototype.stopPolling = function () {
    this.setPace(null);
  };

  WidgetController.prototype.setPace = function (pace) {
    if (pace === this.pace) return;
    var first = !this.pace;
    this.pace = pace;
    this.poller.setAttribute("hx-trigger", pace ? "sync:poll, every " + pace : "sync:poll");
    htmx.process(this.poller, true);
    if (pace && first) this.pollOnce();
  };

  WidgetController.prototype.pollOnce = function () {
    htmx.trigger(this.poller, "sync:poll");
  };

  // A poll answered: htmx morphed the fragment in here; the other tabs get it too.
  WidgetController.prototype.onPolled = function (event) {
    var ctx = event.detail.ctx;
    var ok = ctx.response && ctx.response.status === 200;
    if (ok && this.channel) this.channel.postMessage({ type: "widget", html: ctx.text });
    if (ok) this.pending = null;   // htmx swapped it in, hidden or not: it is the newest
    this.polled(ok);
  };

  // The widget changed (a poll, the stream, a button): polling keeps pace with the sync.
  WidgetController.prototype.onSwapped = function (event) {
    if (this.sharing && this.fromStream(event)) {
      var widget = this.widget();
      if (widget) widget.dataset.event = this.sharing;   // the state it shows now
      this.sharing = null;
      if (widget && this.channel) this.channel.postMessage({ type: "widget", html: widget.outerHTML });
    }
    if (this.pace) this.startPolling();
  };

  // A poll that answers after nothing did means the server is back: the stream is tried
  // at once instead of after its backoff, and the banner goes.
  WidgetController.prototype.polled = function (answered) {
    var before = this.pollsAnswer;
    this.pollsAnswer = answered;
    if (this.stopped) return;
    if (!this.leader) {   // a follower's own polls say whether the server answers
      if (this.connection !== "idle") this.setConnection(answered ? "idle" : "reconnecting");
      return;
    }
    if (this.connection === "live") return;
    if (this.connection === "offline" && !answered) return;
    if (answered && !before && this.failures > 0 && !this.evicted) {
      this.failures = 0;
      this.openStream();
    }
    if (this.connection !== "idle") this.setConnection(this.degraded());
  };

  // --- Connection state, banner and toasts ---

  // The state while the stream is down: polls that answer keep the widget current.
  WidgetController.prototype.degraded = function () {
    if (this.pollsAnswer) return "polling";
    return this.failures >= MAX_FAILURES ? "lost" : "reconnecting";
  };

  WidgetController.prototype.retryNow = function () {
    this.failures = 0;
    this.setConnection("reconnecting");
    this.openStream();
    this.pollOnce();
  };

  WidgetController.prototype.setConnection = function (state) {
    if (state === this.connection) return;
    var previous = this.connection;
    this.connection = state;
    var troubled = ["reconnecting", "lost", "offline"];
    if (state === "live") {
      this.failures = 0;
      this.pollsAnswer = false;   // no polls while live: the next outage starts unknown
      this.stopPolling();
    } else if (state === "reconnecting" && previous === "live") {
      toast("Se perdió la conexión en vivo; reconectando...", "warning");
    } else if (state === "lost") {
      toast("Conexión perdida; se reintentará cada pocos segundos", "error");
    }
    if ((state === "live" || state === "polling") && troubled.indexOf(previous) !== -1) {
      toast("Conexión restablecida", "success");
    }
    this.panel.dataset.connection = state;
    var box = document.getElementById("sync-connection");
    if (!box) return;
    var messages = { reconnecting: "Reconectando...", lost: "Conexión perdida",
                     offline: "Sin conexión" };
    box.hidden = !messages[state];
    box.dataset.state = state;
    box.className = "sticky top-2 z-10 mb-2 rounded-lg px-4 py-2 border text-sm shadow-sm " +
      (state === "lost" ? "bg-rose-50 border-rose-200 text-rose-700"
        : "bg-amber-50 border-amber-200 text-amber-800");
    document.getElementById("sync-connection-message").textContent = messages[state] || "";
    document.getElementById("sync-connection-retry").hidden = state !== "lost";
  };

  WidgetController.prototype.onVisibility = function () {
    if (document.hidden || this.stopped) return;
    if (this.pending) { var html = this.pending; this.pending = null; this.apply(html); }
    if (!this.leader || this.connection !== "live") this.pollOnce();
  };

  WidgetController.prototype.onOffline = function () {
    if (this.stopped) return;
    clearTimeout(this.timers.reopen);
    this.dropStream();
    this.stopPolling();
    this.setConnection("offline");
  };

  WidgetController.prototype.onOnline = function () {
    if (this.stopped) return;
    this.setConnection("reconnecting");
    this.failures = 0;
    if (this.evicted) this.startPolling();   // its stream went to a newer one: it polls
    else if (this.leader) this.openStream();
    else this.pollOnce();
  };

  WidgetController.prototype.destroy = function () {
    this.stopped = true;
    this.dropStream();
    this.stopPolling();
    Object.keys(this.timers).forEach(function (name) { clearTimeout(this.timers[name]); }, this);
    this.listeners.forEach(function (entry) { entry[0].removeEventListener(entry[1], entry[2]); });
    this.listeners = [];
    if (this.releaseLead) this.releaseLead();
    if (this.lockAbort) this.lockAbort.abort();
    if (this.channel) { this.channel.close(); this.channel = null; }
    if (window.syncWidget === this) window.syncWidget = null;
  };

  var current = null;

  // One controller per page that shows the widget: it follows every session. It starts
  // after htmx has processed the page (htmx starts in a timer set when its script ran,
  // before this one), so the stream's element it wires is processed once.
  function start() {
    var panel = document.getElementById("sync-panel");
    if (panel && !current) current = new WidgetController(panel);
  }

  document.addEventListener("DOMContentLoaded", function () { setTimeout(start); });
  window.addEventListener("pagehide", function () {
    if (current) current.destroy();
    current = null;
  });
  // Back to the page from the browser's cache: it comes back without its stream.
  window.addEventListener("pageshow", function (event) { if (event.persisted) start(); });
})();
