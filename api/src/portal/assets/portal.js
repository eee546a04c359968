// leadroute partner portal: live updates over server-sent events (GET /v1/stream).
// Progressive enhancement only: every page reads and works without this script.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch) { return; }

  var inbox = document.getElementById("inbox");
  var lead = document.getElementById("lead");
  var status = document.getElementById("live-status");
  var root = inbox || lead;
  if (!root) { return; }

  function say(text) {
    if (!status) { return; }
    var p = document.createElement("p");
    p.className = "notice";
    p.textContent = text;
    status.textContent = "";
    status.appendChild(p);
  }

  // The inbox: fetch the list again (the server renders it, scoped like every read).
  // `position`: the log position of the change; the server answers once it shows it.
  var loading = false, again = false, wanted = null;
  function refresh(position) {
    if (position) { wanted = position; }
    if (loading) { again = true; return; }
    loading = true;
    var url = inbox.getAttribute("data-items");
    if (wanted) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + "min_position=" + encodeURIComponent(wanted);
      wanted = null;
    }
    fetch(url, { credentials: "same-origin", redirect: "manual" })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401) {
          window.location.reload();
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var items = holder.querySelector("#inbox-items");
        if (!items) { return; }
        var current = document.getElementById("inbox-items");
        current.parentNode.replaceChild(items, current);
        document.title = items.getAttribute("data-title");
      })
      .catch(function () {})
      .then(function () {
        loading = false;
        if (again) { again = false; refresh(null); }
      });
  }

  var gone = { taken: 1, removed: 1, recalled: 1, declined: 1 };
  var source = new EventSource(root.getAttribute("data-stream"));
  source.addEventListener("lead", function (event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (inbox) {
      refresh(data.position);
      if (data.change === "offered" || data.change === "claimable") {
        say(document.documentElement.lang === "es" ? "Ha llegado un lead nuevo." : "A new lead arrived.");
      }
    } else if (lead && data.lead_id === lead.getAttribute("data-lead") && gone[data.change]) {
      lead.classList.add("gone");
      Array.prototype.forEach.call(lead.querySelectorAll("button"), function (b) { b.disabled = true; });
      say(document.documentElement.lang === "es" ? "Este lead ya no está en tu bandeja." : "This lead is no longer in your inbox.");
    }
  });
  source.addEventListener("reload", function () { if (inbox) { refresh(null); } });
  source.addEventListener("signed_out", function () {
    source.close();
    window.location.reload();
  });
})();
