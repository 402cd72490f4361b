/// The UI's one script. Every page works without it; it only
/// - shows times in the browser's time zone (the UTC text moves to the tooltip),
/// - keeps `data-live` parts of a page current: the page's event stream (server-sent events) says
///   something changed, and the script fetches the page again and swaps those parts in,
/// - follows a running task's log, appending what the log's event stream sends.
/// It never inserts markup it did not get from this server's own pages, and text only as text.
enum Script {
    static let text = #"""
"use strict";
(function () {
  document.documentElement.classList.add("has-js");
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  function localize(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.title = el.textContent;
      el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      el.dataset.local = "1";
    });
  }
  localize(document);

  var live = document.body.dataset.live;
  if (live && window.EventSource) {
    var busy = false, again = false;
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(location.href, { credentials: "same-origin", headers: { "X-DeerFlow-Live": "1" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          doc.querySelectorAll("[data-live][id]").forEach(function (fresh) {
            var old = document.getElementById(fresh.id);
            if (old) { old.replaceWith(document.importNode(fresh, true)); }
          });
          localize(document);
          document.dispatchEvent(new Event("deerflow:updated"));
        })
        .catch(function () {})
        .finally(function () {
          busy = false;
          if (again) { again = false; setTimeout(refresh, 250); }
        });
    };
    var source = new EventSource(live);
    source.addEventListener("change", refresh);
    // Changes between rendering the page and (re)connecting the stream are not sent: refresh once.
    source.addEventListener("open", refresh);
  }

  var log = document.getElementById("log");
  var follow = document.getElementById("follow");
  if (log && follow && log.dataset.follow && window.EventSource) {
    follow.hidden = false;
    var stream = null;
    var start = function () {
      var from = log.dataset.bytes || "0";
      stream = new EventSource(log.dataset.follow + "&from=" + encodeURIComponent(from));
      stream.addEventListener("log", function (e) {
        var chunk = JSON.parse(e.data);
        log.appendChild(document.createTextNode(chunk.text));
        log.dataset.bytes = String(chunk.to);
        if (follow.querySelector("input").checked) log.scrollTop = log.scrollHeight;
      });
      stream.addEventListener("end", function () { stream.close(); stream = null; follow.querySelector("span").textContent = "Finished"; });
    };
    var box = follow.querySelector("input");
    box.addEventListener("change", function () {
      if (box.checked && !stream) start();
      if (!box.checked && stream) { stream.close(); stream = null; }
    });
    if (box.checked) start();
  }
})();
"""#
}
