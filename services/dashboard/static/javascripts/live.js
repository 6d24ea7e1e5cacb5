// The live class view (templates/pages/live.html). Everything participants wrote arrives as
// JSON and is shown with textContent: never parsed as HTML.
//
// Updates come as server-sent events (GET live/stream); when the dashboard has no stream
// to spare (429) or the browser has no EventSource, the page polls live/api/board every
// second and tries the stream again after a minute.
(function () {
  "use strict";

  var box = document.getElementById("liveboard");
  if (!box) return;
  var POLL_MS = 1000;
  var RETRY_STREAM_MS = 60000;
  var data = JSON.parse(document.getElementById("initial").textContent);
  var lessonSelect = document.getElementById("lesson");
  var inputs = { stuck_error: document.getElementById("stuck_error"), behind: document.getElementById("behind") };
  var source = null;
  var pollTimer = null;
  var chartTimer = null;

  var el = window.workshopDom.el;

  function ago(iso) {
    if (!iso) return "";
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return Math.round(s / 3600) + " h";
  }

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  // -- settings kept per browser --------------------------------------------------------
  function saved(name, fallback) {
    try { return window.localStorage.getItem("live." + name) || fallback; } catch (e) { return fallback; }
  }
  function save(name, value) {
    try { window.localStorage.setItem("live." + name, value); } catch (e) { /* private mode */ }
  }
  var chosenLesson = saved("lesson", "");
  Object.keys(inputs).forEach(function (k) { inputs[k].value = saved(k, inputs[k].value); });

  function query() {
    var q = "stuck_error=" + encodeURIComponent(inputs.stuck_error.value) +
      "&behind=" + encodeURIComponent(inputs.behind.value);
    return chosenLesson ? q + "&lesson=" + encodeURIComponent(chosenLesson) : q;
  }

  function mode(text, cls) {
    var m = document.getElementById("mode");
    m.textContent = text;
    m.className = "mode " + cls;
    var marker = document.getElementById("live");
    if (marker) { marker.className = "live " + (cls === "down" ? "down" : "ok"); marker.title = text; }
  }

  // -- drawing ----------------------------------------------------------------------------
  var lessonsShown = null;
  function lessons(d) {
    var current = d.lesson ? d.lesson.path : "";
    var signature = JSON.stringify([current, d.lessons]);
    if (signature === lessonsShown) return;  // an open drop-down stays open
    lessonsShown = signature;
    lessonSelect.textContent = "";
    d.lessons.forEach(function (l) {
      var opt = el("option", { value: l.path, text: l.title + " (" + l.path + ")" });
      if (l.path === current) opt.selected = true;
      lessonSelect.appendChild(opt);
    });
    if (!d.lessons.length) lessonSelect.appendChild(el("option", { value: "", text: "no lesson notebooks in the materials" }));
    document.getElementById("lesson-title").textContent = d.lesson ? "· " + d.lesson.title : "";
  }

  function bars(d) {
    var holder = document.getElementById("bars");
    holder.textContent = "";
    var counts = [d.not_started].concat(d.histogram);
    var most = Math.max.apply(null, counts.concat([1]));
    counts.forEach(function (n, k) {
      var title = k === 0 ? "not started" : k + ". " + d.lesson.exercises[k - 1];
      var fill = el("div", { class: "fill" });
      fill.style.height = Math.round(120 * n / most) + "px";
      holder.appendChild(el("div", { class: "bar" + (k === 0 ? " none" : ""), title: title, "data-exercise": String(k) }, [
        el("span", { class: "n", text: String(n) }), fill, el("span", { class: "k", text: k === 0 ? "–" : String(k) }),
      ]));
    });
  }

  function lastLine(p) {
    if (!p.last) return el("div", { class: "last", text: "nothing run yet" });
    var text = p.last.ok ? "✓ " + (p.last.head.split("\n")[0] || "(empty cell)")
      : "✗ " + p.last.error.name + ": " + p.last.error.message.split("\n")[0];
    var took = p.last.duration == null ? "" : "\n(ran " + p.last.duration.toFixed(2) + " s, " +
      (p.last.path || "notebook unknown") + ")";
    return el("div", { class: "last " + (p.last.ok ? "ok" : "error"), title: p.last.head + took,
      text: text + " · " + ago(p.last.at) });
  }

  function tile(p, d, helping) {
    var n = d.lesson ? d.lesson.exercises.length : 0;
    var cls = "tile" + (p.last ? (p.last.ok ? " ok" : " error") : "") + (p.stuck ? " stuck" : "") +
      (helping[p.name] ? " helpme" : "") + (p.server === "" ? " offline" : "");
    var name = p.lab && p.last && p.last.path
      ? el("a", { class: "name open", href: p.lab + encodePath(p.last.path), target: "_blank", rel: "noopener",
        title: "open " + p.name + "'s JupyterLab on " + p.last.path, text: p.name })
      : el("span", { class: "name", text: p.name });
    var where = el("span", { class: "where", text: p.exercise === null ? "–/" + n : (p.exercise + 1) + "/" + n });
    var who = el("div", { class: "who" }, [name, where]);
    if (p.dropped) who.appendChild(el("span", { class: "where", title: "executions their kernels could not deliver", text: "lost " + p.dropped }));
    if (p.stuck) who.appendChild(el("span", { class: "badge", title: p.stuck.text, text: p.stuck.text }));
    else if (helping[p.name]) who.appendChild(el("span", { class: "badge", text: "asks for help" }));
    var strip = el("div", { class: "strip" });
    p.states.forEach(function (state, k) {
      strip.appendChild(el("i", { class: state + (k === p.current ? " current" : ""), title: (k + 1) + ". " + d.lesson.exercises[k] }));
    });
    return el("div", { class: cls, "data-user": p.name, "data-exercise": p.exercise === null ? "" : String(p.exercise + 1),
      "data-count": p.last && p.last.count !== null ? String(p.last.count) : "",
      "data-at": p.last ? p.last.at : "" }, [who, strip, lastLine(p)]);
  }

  function grid(d) {
    var holder = document.getElementById("grid");
    var helping = {};
    d.help.forEach(function (h) { helping[h.user] = h; });
    var tiles = d.participants.map(function (p) { return tile(p, d, helping); });
    holder.textContent = "";
    tiles.forEach(function (t) { holder.appendChild(t); });
    if (!d.participants.length) holder.appendChild(el("p", { class: "empty", text: "Nobody in the class yet." }));
  }

  function helpQueue(d) {
    var list = document.getElementById("helpq");
    document.getElementById("help-count").textContent = d.help.length ? String(d.help.length) : "";
    list.textContent = "";
    var lab = {};
    d.participants.forEach(function (p) { lab[p.name] = p.lab; });
    d.help.forEach(function (h) {
      var item = el("li", { "data-id": String(h.id), "data-user": h.user }, [
        el("strong", { text: h.user }), " · waiting " + ago(h.since) + " ",
      ]);
      if (lab[h.user]) {
        item.appendChild(el("a", { class: "open stepin", href: lab[h.user] + (h.path ? encodePath(h.path) : ""),
          target: "_blank", rel: "noopener", text: "step in" }));
        item.appendChild(document.createTextNode(" "));
      }
      var done = el("button", { type: "button", class: "done", text: "done" });
      done.addEventListener("click", function () { markDone(h.id, done); });
      item.appendChild(done);
      item.appendChild(el("span", { class: "msg", text: h.message }));
      if (h.last_error) item.appendChild(el("span", { class: "err", text: h.last_error.name + ": " + h.last_error.message }));
      list.appendChild(item);
    });
    if (!d.help.length) list.appendChild(el("li", { class: "empty", text: "nobody is waiting" }));
  }

  function chart() {
    var img = document.getElementById("chart");
    var lesson = data.lesson ? "lesson=" + encodeURIComponent(data.lesson.path) + "&" : "";
    img.src = box.dataset.chart + "?" + lesson + "t=" + Math.floor(Date.now() / 10000);
  }

  function render(d) {
    var lessonChanged = !data.lesson || !d.lesson || data.lesson.path !== d.lesson.path;
    data = d;
    lessons(d);
    if (d.lesson) bars(d);
    grid(d);
    helpQueue(d);
    if (lessonChanged) chart();
    box.dataset.version = d.version;
    box.dataset.rendered = String(Date.now());
  }

  // -- actions --------------------------------------------------------------------------------
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": box.dataset.csrf, Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error(j.message || ("HTTP " + r.status)); return j; });
    });
  }

  function markDone(id, button) {
    button.disabled = true;
    post(box.dataset.help + id + "/done").catch(function (e) {
      button.disabled = false;
      window.alert("Could not mark it done: " + e.message);
    });
  }

  function pushes() {
    fetch(box.dataset.pushes, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
        if (!j) return;
        var list = document.getElementById("pushes");
        list.textContent = "";
        var outcomes = {};
        Object.keys(j.deliveries).forEach(function (u) {
          var dl = j.deliveries[u];
          var key = dl.version === j.version ? dl.outcome : "waiting";
          outcomes[key] = (outcomes[key] || 0) + 1;
        });
        if (j.version) list.appendChild(el("li", { class: "small", text: "latest version " + j.version + ": " +
          Object.keys(outcomes).map(function (k) { return outcomes[k] + " " + k; }).join(", ") }));
        j.pushes.slice().reverse().forEach(function (p) {
          list.appendChild(el("li", {}, [p.kind + " by " + p.author + ", " + ago(p.at) + " ago: ",
            el("code", { text: p.source.split("\n").slice(0, 2).join("\n") })]));
        });
      });
  }

  document.getElementById("push").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target;
    var status = document.getElementById("push-status");
    status.textContent = " sending…";
    post(box.dataset.push, { kind: form.kind.value, source: form.source.value }).then(function (p) {
      status.textContent = " ✓ sent as cell " + p.id + ": arriving in every home";
      status.className = "result ok";
      form.source.value = "";
      window.setTimeout(pushes, 3000);
    }).catch(function (e) {
      status.textContent = " ✗ " + e.message;
      status.className = "result failed";
    });
  });
  document.getElementById("pushbox").addEventListener("toggle", pushes);

  // -- staying current ---------------------------------------------------------------------------
  function poll() {
    stop();
    mode("polling every second", "polling");
    function tick() {
      fetch(box.dataset.api + "?" + query() + "&since=" + encodeURIComponent(data.version), {
        credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store",
      }).then(function (r) {
        if (r.status === 401 || r.status === 403) { mode("session ended: reload the page", "down"); return; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json().then(function (d) {
          if (d.participants) render(d);
          mode("polling every second", "polling");
          pollTimer = window.setTimeout(tick, POLL_MS);
        });
      }).catch(function (e) {
        mode("dashboard unreachable, retrying: " + e.message, "down");
        pollTimer = window.setTimeout(tick, 5000);
      });
    }
    tick();
    window.setTimeout(function () { if (pollTimer) stream(); }, RETRY_STREAM_MS);
  }

  function stop() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
  }

  function stream() {
    stop();
    if (!window.EventSource) { poll(); return; }
    var es = new EventSource(box.dataset.stream + "?" + query());
    source = es;
    es.addEventListener("board", function (ev) {
      mode("live (pushed)", "stream");
      render(JSON.parse(ev.data));
    });
    es.onerror = function () {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) poll();  // refused (429, 401): poll instead
      else mode("reconnecting…", "polling");
    };
  }

  function changed() {
    Object.keys(inputs).forEach(function (k) { save(k, inputs[k].value); });
    chosenLesson = lessonSelect.value;
    save("lesson", chosenLesson);
    data.lesson = null;  // the chart follows the lesson shown
    stream();
  }
  lessonSelect.addEventListener("change", changed);
  Object.keys(inputs).forEach(function (k) { inputs[k].addEventListener("change", changed); });

  render(data);
  chart();
  chartTimer = window.setInterval(chart, 15000);
  stream();
  window.liveBoard = { render: render, mode: function () { return source ? "stream" : "polling"; } };
})();
