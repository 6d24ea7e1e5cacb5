// poll.js: keep a page in step with the dashboard without reloading it.
//
//   poll(url, {since: version, interval: 1000, onData: function (data) {...}})
//
// Asks `url?since=<version>` every `interval` ms. Whenever the answer carries a newer
// `version`, calls onData(data) and remembers that version. Backs off (up to 30 s) while
// the dashboard is unreachable, and says so in the page's #live marker; stops when the
// session has ended (401/403) and asks for a reload instead.
(function () {
  "use strict";

  function mark(state, title) {
    var live = document.getElementById("live");
    if (live) {
      live.className = "live " + state;
      live.title = title;
    }
  }

  function poll(url, options) {
    var version = options.since;
    var interval = options.interval || 1000;
    var delay = interval;

    function next() {
      window.setTimeout(tick, delay);
    }

    function tick() {
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "since=" + encodeURIComponent(version), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      }).then(function (response) {
        if (response.status === 401 || response.status === 403) {
          mark("ended", "session ended: reload the page to log in again");
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json().then(function (data) {
          mark("ok", "live: updated " + new Date().toLocaleTimeString());
          delay = interval;
          if (data.version !== version) {
            version = data.version;
            options.onData(data);
          }
          next();
        });
      }).catch(function (error) {
        mark("down", "dashboard unreachable, retrying: " + error.message);
        delay = Math.min(delay * 2, 30000);
        next();
      });
    }

    next();
  }

  window.poll = poll;
})();
