// The run page, live: the step timeline, and status changes pushed by the server as
// server-sent events (workflows/live.py) while the run is unfinished. Without EventSource the
// page reloads itself every few seconds instead, as it did before.
(function () {
  "use strict";

  var STATUSES = ["pending", "queued", "running", "waiting", "succeeded", "failed", "cancelled", "skipped"];
  var FINISHED = {succeeded: true, failed: true, cancelled: true, skipped: true};
  var OPEN_ENDED = {running: true, waiting: true};  // started, not finished: the bar grows

  var timeline = document.getElementById("run-timeline");
  var live = document.getElementById("run-live");
  var indicator = document.getElementById("live-indicator");

  function parseTime(value) {
    // Python's ISO times carry microseconds; some browsers parse milliseconds only.
    return value ? Date.parse(value.replace(/(\.\d{3})\d+/, "$1")) : NaN;
  }

  // Bars of running steps end at "now" on the server's clock, not the browser's.
  var clockOffset = 0;
  if (timeline && timeline.dataset.now) {
    var serverNow = parseTime(timeline.dataset.now);
    if (!isNaN(serverNow)) clockOffset = serverNow - Date.now();
  }
  function now() {
    return Date.now() + clockOffset;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString();
  }

  function drawTimeline() {
    if (!timeline) return false;
    var rows = Array.prototype.slice.call(timeline.querySelectorAll(".timeline-row[data-node]"));
    var spans = rows.map(function (row) {
      var start = parseTime(row.dataset.started);
      var end = parseTime(row.dataset.finished);
      var status = row.dataset.status;
      if (row.dataset.reused || isNaN(start)) return null;
      if (isNaN(end)) end = OPEN_ENDED[status] ? Math.max(now(), start) : start;
      return {start: start, end: end, open: isNaN(parseTime(row.dataset.finished)) && !!OPEN_ENDED[status]};
    });
    var t0 = Infinity;
    var t1 = -Infinity;
    var growing = false;
    spans.forEach(function (span) {
      if (!span) return;
      t0 = Math.min(t0, span.start);
      t1 = Math.max(t1, span.end);
      growing = growing || span.open;
    });
    var total = Math.max(t1 - t0, 1);
    rows.forEach(function (row, i) {
      var span = spans[i];
      var bar = row.querySelector(".timeline-bar");
      var label = row.querySelector(".timeline-time");
      bar.className = "timeline-bar status-" + row.dataset.status;
      if (!span) {
        bar.hidden = true;
        label.textContent = row.dataset.reused ? "reused" : row.dataset.status;
        return;
      }
      bar.hidden = false;
      bar.style.left = ((span.start - t0) / total) * 100 + "%";
      bar.style.width = Math.max(((span.end - span.start) / total) * 100, 0.5) + "%";
      var seconds = ((span.end - span.start) / 1000).toFixed(1) + " s";
      label.textContent = span.open ? row.dataset.status + " " + seconds : seconds;
      bar.title = row.dataset.node + ": " + row.dataset.status + ", " + seconds;
    });
    var start = timeline.querySelector(".timeline-start");
    var end = timeline.querySelector(".timeline-end");
    if (start && end) {
      start.textContent = isFinite(t0) ? clock(t0) : "";
      end.textContent = isFinite(t1) ? clock(t1) : "";
    }
    return growing;
  }

  function setBadge(badge, status) {
    if (!badge) return;
    badge.className = "badge status-" + status;
    badge.textContent = status;
  }

  function setIndicator(text, stopped) {
    if (!indicator) return;
    indicator.textContent = text;
    indicator.classList.toggle("live-stopped", !!stopped);
  }

  // A step's card (inputs, outputs, charts, logs, errors) comes from the page itself, fetched
  // again; steps changing together cost one fetch. Only the latest fetch is applied, to every
  // card that changed since the page loaded, so a slow older answer never wins.
  var changedCards = {};
  var refreshTimer = null;
  var fetchSeq = 0;
  function refreshCards() {
    refreshTimer = null;
    var seq = ++fetchSeq;
    fetch(window.location.pathname, {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (seq !== fetchSeq) return;
        var page = new DOMParser().parseFromString(html, "text/html");
        Object.keys(changedCards).forEach(function (node) {
          var fresh = page.getElementById("step-" + node);
          var card = document.getElementById("step-" + node);
          if (fresh && card) card.replaceWith(document.importNode(fresh, true));
        });
      })
      .catch(function () {
        /* the reload at the end shows them */
      });
  }
  function refreshCard(node) {
    changedCards[node] = true;
    if (!refreshTimer) refreshTimer = setTimeout(refreshCards, 300);
  }

  function applyStep(step) {
    var card = document.getElementById("step-" + step.node_id);
    if (card) {
      STATUSES.forEach(function (s) {
        card.classList.remove("step-" + s);
      });
      card.classList.add("step-" + step.status);
      setBadge(card.querySelector(".step-meta .badge"), step.status);
      card.querySelectorAll(".step-meta span").forEach(function (span) {
        if (/^attempt \d+$/.test(span.textContent.trim())) span.textContent = "attempt " + step.attempt;
      });
    }
    if (timeline) {
      var row = timeline.querySelector('.timeline-row[data-node="' + CSS.escape(step.node_id) + '"]');
      if (row) {
        row.dataset.status = step.status;
        row.dataset.started = step.started_at || "";
        row.dataset.finished = step.finished_at || "";
      }
    }
    drawTimeline();
    // Started (its inputs, start time), parked or finished: the card shows more than the badge.
    if (FINISHED[step.status] || OPEN_ENDED[step.status]) refreshCard(step.node_id);
  }

  function applyRun(run) {
    document.querySelectorAll(".page-header h1 .badge, .summary .badge").forEach(function (badge) {
      setBadge(badge, run.status);
    });
  }

  var ticker = null;
  function tick() {
    if (!drawTimeline() && !live && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
  }
  if (drawTimeline() || live) ticker = setInterval(tick, 1000);

  if (!live) return;
  var refreshS = parseFloat(live.dataset.refreshS) || 2;
  if (!window.EventSource) {
    setTimeout(function () {
      window.location.reload();
    }, refreshS * 1000);
    return;
  }

  var source = new EventSource(live.dataset.eventsUrl);
  source.addEventListener("open", function () {
    setIndicator("live");
  });
  source.addEventListener("step", function (event) {
    applyStep(JSON.parse(event.data));
  });
  source.addEventListener("run", function (event) {
    applyRun(JSON.parse(event.data));
  });
  source.addEventListener("end", function (event) {
    // Closed here, or the browser would connect again. One reload shows the finished run
    // whole: every output, the rerun buttons.
    source.close();
    live = null;
    applyRun(JSON.parse(event.data));
    setIndicator("finished");
    window.location.reload();
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      // Not an event stream any more (logged out, say): the browser will not try again.
      setIndicator("live updates stopped: reload the page", true);
    } else {
      setIndicator("reconnecting…", true);
    }
  });
})();
