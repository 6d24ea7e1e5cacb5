// The dashboard's pages: build the board, the summary and the view from the JSON the
// server embedded, then keep them current with poll.js. No inline script anywhere.
(function () {
  "use strict";

  var el = window.workshopDom.el;

  function initial() {
    return JSON.parse(document.getElementById("initial").textContent);
  }

  function ago(iso) {
    if (!iso) return "";
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 90) return "1 min ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 5400) return "1 h ago";
    if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
    return new Date(iso).toLocaleString();
  }

  function refreshTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      t.textContent = ago(t.getAttribute("datetime"));
    });
  }

  function path(base, rest) {
    return base + rest.split("/").map(encodeURIComponent).join("/");
  }

  // -- index: participants x notebooks, their servers, and what instructors did -------
  // The board is rebuilt whenever anything changes (a restart changes a server's state
  // several times), so what an action says is kept here, per participant, not in the DOM.
  var results = {};

  function showResult(user, text, state) {
    results[user] = { text: text, state: state };
    var span = document.querySelector('tr[data-user="' + user + '"] .result');
    if (span) {
      span.textContent = text;
      span.className = "result " + state;
    }
  }

  function act(box, button, action, user) {
    var verb = action === "restart" ? "Restart" : "Start";
    if (action === "restart" && !window.confirm(verb + " " + user + "'s server? Running kernels stop; files stay.")) return;
    button.disabled = true;
    showResult(user, " " + verb.toLowerCase() + "ing…", "busy");
    fetch(box.dataset.actions + action + "/" + encodeURIComponent(user), {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": box.dataset.csrf, Accept: "application/json" },
    }).then(function (r) {
      return r.json().then(function (entry) {
        if (r.ok) {
          showResult(user, " ✓ " + action + "ed" + (entry.detail.seconds ? " in " + entry.detail.seconds + " s" : ""), "ok");
        } else {
          showResult(user, " ✗ " + (entry.detail && entry.detail.error || entry.message), "failed");
        }
      });
    }).catch(function (e) {
      showResult(user, " ✗ " + e.message, "failed");
    }).then(function () { button.disabled = false; });
  }

  function serverCell(box, user, state) {
    var cell = el("th", { class: "person" }, [user, " "]);
    if (state !== null) {
      cell.appendChild(el("span", { class: "state " + (state || "stopped"), text: state || "stopped" }));
      var action = state ? "restart" : "start";
      var button = el("button", { type: "button", class: "act", "data-action": action, text: action });
      button.addEventListener("click", function () { act(box, button, action, user); });
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(button);
    }
    var last = results[user];
    cell.appendChild(el("span", { class: "result " + (last ? last.state : ""), text: last ? last.text : "" }));
    return cell;
  }

  function actions(list) {
    var body = document.querySelector("#actions tbody");
    if (!body) return;
    body.textContent = "";
    list.forEach(function (a) {
      var detail = a.detail.error || (a.detail.seconds ? a.detail.seconds + " s" : "") ||
        (a.detail.files_delivered !== undefined ? a.detail.files_delivered + " files to " + a.detail.participants + " people" : "");
      body.appendChild(el("tr", { class: a.outcome }, [
        el("td", {}, [el("time", { datetime: a.at, text: ago(a.at) })]),
        el("td", { text: a.actor }), el("td", { text: a.action }), el("td", { text: a.target }),
        el("td", { text: a.outcome }), el("td", { text: detail }),
      ]));
    });
  }

  function board(data) {
    var box = document.getElementById("board");
    var notebooks = Object.keys(data.notebooks).sort();
    var servers = data.servers;  // null: the hub could not be asked
    box.textContent = "";
    actions(data.actions || []);
    var head = el("tr", {}, [el("th", { text: "participant" })]);
    notebooks.forEach(function (nb) {
      head.appendChild(el("th", {}, [
        el("a", { href: path(box.dataset.summary, nb), text: nb }), " ",
        el("a", { href: path(box.dataset.download, nb), class: "zip", title: "download everyone's copy", text: "zip" }),
      ]));
    });
    var rows = data.participants.map(function (user) {
      var state = servers === null ? null : (servers[user] || "");
      var row = el("tr", { "data-user": user }, [serverCell(box, user, state)]);
      notebooks.forEach(function (nb) {
        var facts = data.notebooks[nb].participants[user];
        var cell = el("td", { "data-path": nb });
        if (facts) {
          cell.appendChild(el("a", { href: path(box.dataset.view, user + "/" + nb), class: "view" }, [
            el("time", { datetime: facts.saved, text: ago(facts.saved) }),
          ]));
          cell.appendChild(el("span", { class: "cells", text: " · " + facts.executed + " run" }));
          if (facts.last_error) {
            cell.className = "error";
            cell.appendChild(el("span", { class: "flag", text: " ⚠ error" }));
          }
          if (facts.problem) cell.appendChild(el("span", { class: "flag", text: " ⚠ " + facts.problem }));
          if (state === "running" && data.lab) {
            cell.appendChild(document.createTextNode(" · "));
            cell.appendChild(el("a", {
              href: path(data.lab[user], nb),
              class: "open", target: "_blank", rel: "noopener",
              title: "open " + user + "'s live JupyterLab on this notebook", text: "open",
            }));
          }
        } else {
          cell.className = "none";
          cell.textContent = "—";
        }
        row.appendChild(cell);
      });
      return row;
    });
    if (!notebooks.length) {
      box.appendChild(el("p", { class: "empty", text: "Nobody has saved a notebook yet." }));
    }
    if (!data.lab) {
      box.appendChild(el("p", { class: "note", text: "Stepping into participants' servers is " +
        "off: without a wildcard certificate they share the hub's origin (see the README)." }));
    }
    box.appendChild(el("table", { class: "board" }, [el("thead", {}, [head]), el("tbody", {}, rows)]));
  }

  // -- summary: everyone's last cells of one notebook -----------------------------------
  function section(box, user, facts, html) {
    var id = "user-" + user;
    var node = document.getElementById(id);
    if (!node) {
      node = el("section", { id: id, class: "participant", "data-user": user });
      var after = Array.prototype.find.call(box.children, function (s) { return s.dataset.user > user; });
      box.insertBefore(node, after || null);
      var nav = document.getElementById("people");
      nav.appendChild(el("a", { href: "#" + id, text: user }));
    }
    node.classList.toggle("error", !!facts.last_error);
    var heading = el("h2", {}, [el("a", { href: path(box.dataset.view, user + "/" + box.dataset.path), text: user })]);
    var line = el("p", { class: "facts" }, [
      facts.executed + " cells run · saved ", el("time", { datetime: facts.saved, text: ago(facts.saved) }),
      facts.last_error ? el("span", { class: "flag", text: " ⚠ last run cell raised an error" }) : "",
    ]);
    var cells = node.querySelector(".cells-html") || el("div", { class: "cells-html" });
    if (html !== undefined) cells.innerHTML = html;  // sanitized server-side; CSP forbids inline script
    node.textContent = "";
    node.appendChild(heading);
    node.appendChild(line);
    node.appendChild(cells);
  }

  function summary(data) {
    var box = document.getElementById("summary");
    Object.keys(data.participants).sort().forEach(function (user) {
      var facts = data.participants[user];
      section(box, user, facts, facts.html);
    });
    box.dataset.version = data.version;
  }

  var pages = {
    index: function () {
      var data = initial();
      board(data);
      var api = document.getElementById("board").dataset.api;
      window.poll(api, { since: data.version, interval: 1000, onData: board });
    },
    summary: function () {
      var data = initial();
      Object.keys(data.participants).forEach(function (user) {
        data.participants[user].html = data.fragments[user];
      });
      summary(data);
      var api = document.getElementById("summary").dataset.api;
      window.poll(api, { since: data.version, interval: 1000, onData: summary });
    },
    view: function () {
      var frame = document.getElementById("notebook");
      window.poll(frame.dataset.api, {
        since: -1, interval: 1500, onData: function (data) {
          var facts = data.participants[frame.dataset.user];
          if (facts && String(facts.version) !== frame.dataset.version) {
            frame.dataset.version = facts.version;
            frame.src = frame.src.replace(/\?v=.*$/, "") + "?v=" + facts.version;
          }
        },
      });
    },
  };

  var page = pages[document.body.dataset.page];
  if (page) page();
  window.setInterval(refreshTimes, 10000);
})();
