// Keeps the sync widget live. One tab per browser holds the user's event stream (a Web Lock
// decides which) and shares every update with the other tabs (BroadcastChannel), so any
// number of tabs stay live within HTTP/1.1's six connections per site. The stream follows
// whatever sync the user runs, started here, elsewhere or by the schedule, and waits for
// the next one when it ends. Whenever the stream is down, polling the widget fragment takes
// over, and the stream is tried again with backoff for as long as the page is open. All
// HTML comes rendered from the server.
//
// Connection states: live (stream), polling (stream down, polls answer: the widget is still
// current, so no banner), reconnecting, lost (nothing answered MAX_FAILURES times), offline.
(function () {
  "use strict";

  var MAX_FAILURES = 5;
  var MAX_DELAY = 30000;
  var FIRST_BYTE_TIMEOUT = 8000;   // a buffering proxy shows up as silence
  var SILENCE_TIMEOUT = 40000;     // the server sends a heartbeat every 15 s
  var FOLLOWER_WATCHDOG = 20000;
  var POLL_FAST = 2000;
  var POLL_SLOW = 10000;
  var ALIVE_EVERY = 10000;          // how often the leading tab tells the others it streams
  var TOKEN = /data-token="([^"]+)"/;

  var PATCH_DEPTH = 5;              // deep enough to reach one account's count and bar

  function patch(current, next, depth, morphed) {
    if (current.isEqualNode(next)) return;
    if (depth > 0 && sameShell(current, next)) {
      var olds = Array.prototype.slice.call(current.children);
      var news = Array.prototype.slice.call(next.children);
      for (var i = 0; i < olds.length; i++) patch(olds[i], news[i], depth - 1, morphed);
      return;
    }
    Idiomorph.morph(current, next, { morphStyle: "outerHTML" });
    morphed.push(current);   // morphed in place: sameShell matched its tag and id
  }

  // The same element with the same attributes and text around the same child elements:
  // whatever differs is inside its children.
  function sameShell(a, b) {
    if (a.tagName !== b.tagName || a.attributes.length !== b.attributes.length ||
        a.childNodes.length !== b.childNodes.length) return false;
    for (var i = 0; i < a.attributes.length; i++) {
      if (b.getAttribute(a.attributes[i].name) !== a.attributes[i].value) return false;
    }
    for (var j = 0; j < a.childNodes.length; j++) {
      var x = a.childNodes[j], y = b.childNodes[j];
      if (x.nodeType !== y.nodeType) return false;
      if (x.nodeType === Node.ELEMENT_NODE ? x.tagName !== y.tagName || x.id !== y.id
          : x.nodeValue !== y.nodeValue) return false;
    }
    return true;
  }

  // Tabs of one browser share a stream only when they show the same user's widget (a test,
  // or someone who signed in as another user in another tab).
  function userKey() {
    var panel = document.getElementById("sync-panel");
    return panel ? panel.dataset.user || "" : "";
  }

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

  function WidgetController(widget) {
    this.statusUrl = widget.dataset.statusUrl;
    this.streamUrl = widget.dataset.streamUrl;
    this.failures = 0;
    this.timers = {};
    this.lastEventId = null;
    this.idToken = null;        // the session lastEventId belongs to
    this.aliveAt = 0;
    this.pending = null;
    this.leader = false;
    this.stopped = false;
    this.connection = "idle";
    this.pollsAnswer = false;   // whether the last poll answered
    this.pollDelay = POLL_FAST;
    this.listeners = [];
    this.channel = "BroadcastChannel" in window ? new BroadcastChannel("sync-widget-" + userKey()) : null;
    if (this.channel) this.channel.onmessage = this.onShared.bind(this);
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
    navigator.locks.request("sync-stream-" + userKey(), { signal: this.lockAbort.signal },
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
      self.connect();
    });
  };

  WidgetController.prototype.watchFollower = function () {
    var self = this;
    clearTimeout(this.timers.follower);
    if (this.leader || this.stopped) return;
    this.timers.follower = setTimeout(function () {
      // No word from the leading tab for a while: check for ourselves.
      self.pollOnce().then(function () { self.watchFollower(); });
    }, FOLLOWER_WATCHDOG);
  };

  WidgetController.prototype.connect = function () {
    var self = this;
    if (this.stopped || this.evicted) return;
    if (navigator.onLine === false) { this.onOffline(); return; }
    this.abortStream();
    var abort = new AbortController();
    this.streamAbort = abort;
    var headers = { "Accept": "text/event-stream" };
    var widget = this.widget();
    var shown = widget ? widget.dataset.token : null;
    if (this.lastEventId && shown && shown === this.idToken) {
      headers["Last-Event-ID"] = this.lastEventId;
    }
    var ended = ["completed", "failed"].indexOf(this.status()) !== -1;
    var url = this.streamUrl + (shown ? "?shown=" + encodeURIComponent(shown) +
                                        (ended ? "&ended=1" : "") : "");
    this.armSilence(FIRST_BYTE_TIMEOUT);
    fetch(url, { headers: headers, signal: abort.signal, credentials: "same-origin",
                            cache: "no-store" })
      .then(function (response) {
        if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
        return self.read(response.body.getReader(), abort);
      })
      .then(function () { if (!abort.signal.aborted) self.fail(); })
      .catch(function () { if (!abort.signal.aborted) self.fail(); });
  };

  WidgetController.prototype.read = function (reader, abort) {
    var self = this;
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || abort.signal.aborted) return;
        self.armSilence(SILENCE_TIMEOUT);
        self.setConnection("live");   // any byte, a comment too: an idle stream sends only those
        self.tellAlive();
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          self.dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return pump();
      });
    }
    return pump();
  };

  WidgetController.prototype.dispatch = function (block) {
    var id = null, type = "message", data = [];
    block.split("\n").forEach(function (line) {
      if (line.charAt(0) === ":") return;
      var colon = line.indexOf(":");
      var field = colon === -1 ? line : line.slice(0, colon);
      var value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
    });
    if (!data.length) return;
    if (type === "closed") { this.replaced(); return; }
    this.setConnection("live");
    if (type === "widget") {
      var html = data.join("\n");
      var token = TOKEN.exec(html);
      if (id) { this.lastEventId = id; this.idToken = token ? token[1] : null; }
      this.share({ type: "widget", html: html });
    }
    else if (type === "toast") this.share({ type: "toast", text: data.join("\n") });
  };

  // Other tabs first: applying a final state here ends this controller and its channel.
  WidgetController.prototype.share = function (message) {
    if (this.channel) this.channel.postMessage(message);
    this.onShared({ data: message });
  };

  // Heartbeats say nothing to the page, but an idle stream sends nothing else: the other
  // tabs hear now and then that it is alive, or they would poll for themselves.
  WidgetController.prototype.tellAlive = function () {
    var now = Date.now();
    if (!this.channel || now - this.aliveAt < ALIVE_EVERY) return;
    this.aliveAt = now;
    this.channel.postMessage({ type: "alive" });
  };

  WidgetController.prototype.onShared = function (event) {
    var message = event.data;
    if (!this.leader) this.watchFollower();
    if (message.type === "toast") { if (!document.hidden) toast(message.text, "warning"); return; }
    if (message.type !== "widget") return;
    if (document.hidden) { this.pending = message.html; return; }
    this.apply(message.html);
  };

  WidgetController.prototype.apply = function (html) {
    var widget = this.widget();
    if (!widget) return;
    this.morph(widget, html).forEach(function (element) { htmx.process(element); });
  };

  // An update usually changes the bar, the figures and one account. Morphing the whole
  // fragment (a hundred elements) cost most of an update's time on a busy machine, so only
  // the parts that differ are morphed; the rest is compared natively and left alone.
  // Returns the elements it morphed: only they can hold new htmx attributes.
  WidgetController.prototype.morph = function (widget, html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var next = template.content.firstElementChild;
    var morphed = [];
    if (next && next.id === widget.id) {
      patch(widget, next, PATCH_DEPTH, morphed);
    } else {
      Idiomorph.morph(widget, html, { morphStyle: "outerHTML" });
      morphed.push(this.widget());
    }
    return morphed;
  };

  WidgetController.prototype.armSilence = function (ms) {
    var self = this;
    clearTimeout(this.timers.silence);
    this.timers.silence = setTimeout(function () {
      self.abortStream();
      self.fail();
    }, ms);
  };

  WidgetController.prototype.abortStream = function () {
    clearTimeout(this.timers.silence);
    if (this.streamAbort) this.streamAbort.abort();
    this.streamAbort = null;
  };

  WidgetController.prototype.fail = function () {
    var self = this;
    if (this.stopped) return;
    this.abortStream();
    this.failures += 1;
    this.startPolling();
    this.setConnection(this.degraded());
    var delay = Math.min(Math.pow(2, this.failures) * 1000 + Math.random() * 1000, MAX_DELAY);
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(function () { self.connect(); }, delay);
  };

  // The server closed this stream for a newer one of the same user (its per-user cap):
  // polling keeps the widget current, and the stream is not reopened (that would close
  // another one in turn).
  WidgetController.prototype.replaced = function () {
    this.evicted = true;
    this.abortStream();
    clearTimeout(this.timers.reconnect);
    this.pollsAnswer = true;
    this.startPolling();
    this.setConnection("polling");
  };

  // The state while the stream is down: polls that answer keep the widget current.
  WidgetController.prototype.degraded = function () {
    if (this.pollsAnswer) return "polling";
    return this.failures >= MAX_FAILURES ? "lost" : "reconnecting";
  };

  WidgetController.prototype.retryNow = function () {
    this.failures = 0;
    clearTimeout(this.timers.reconnect);
    this.setConnection("reconnecting");
    this.connect();
    this.pollOnce();
  };

  WidgetController.prototype.startPolling = function () {
    var self = this;
    if (this.timers.poll || this.stopped) return;
    this.pollDelay = POLL_FAST;
    function tick() {
      self.pollOnce().then(function () {
        if (self.stopped || self.connection === "live") { self.timers.poll = null; return; }
        self.pollDelay = self.status() === "running" ? POLL_FAST
          : Math.min(self.pollDelay * 1.5, POLL_SLOW);
        self.timers.poll = setTimeout(tick, self.pollDelay);
      });
    }
    this.timers.poll = setTimeout(tick, 0);
  };

  WidgetController.prototype.stopPolling = function () {
    clearTimeout(this.timers.poll);
    this.timers.poll = null;
  };

  WidgetController.prototype.pollOnce = function () {
    var self = this;
    return fetch(this.statusUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin",
                                   cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) { self.share({ type: "widget", html: html }); self.polled(true); })
      .catch(function () { self.polled(false); });
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
    if (answered && !before && this.failures > 0) {
      this.failures = 0;
      clearTimeout(this.timers.reconnect);
      this.connect();
    }
    if (this.connection !== "idle") this.setConnection(this.degraded());
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
    var panel = document.getElementById("sync-panel");
    if (panel) panel.dataset.connection = state;
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
    if (!this.leader) this.pollOnce();
  };

  WidgetController.prototype.onOffline = function () {
    if (this.stopped) return;
    this.abortStream();
    this.stopPolling();
    clearTimeout(this.timers.reconnect);
    this.setConnection("offline");
  };

  WidgetController.prototype.onOnline = function () {
    if (this.stopped) return;
    this.setConnection("reconnecting");
    this.failures = 0;
    if (this.leader) this.connect(); else this.pollOnce();
  };

  WidgetController.prototype.destroy = function () {
    this.stopped = true;
    this.abortStream();
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

  // One controller per page, for as long as it shows the widget: it follows every session.
  function attach() {
    var widget = document.getElementById("sync-widget");
    if (current && !current.stopped) return;
    current = widget ? new WidgetController(widget) : null;
  }

  document.addEventListener("DOMContentLoaded", attach);
  document.addEventListener("htmx:afterSettle", attach);
  window.addEventListener("pagehide", function () { if (current) current.destroy(); });
})();
