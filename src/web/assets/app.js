// mailrules' only script (served from /static/: the Content-Security-Policy allows no inline
// script). On the queue it asks /api/version twice a second; when a task changed or new mail
// arrived, it fetches the queue's rows alone (/tasks/rows with the page's own query, which the
// server renders once per version for every open queue) and swaps them in, so new mail shows
// without a reload.
"use strict";

(function () {
  const queue = document.getElementById("queue");
  if (!queue) {
    return;
  }
  let version = queue.dataset.version || "";
  let busy = false;

  async function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const answer = await fetch("/api/version", { credentials: "same-origin" });
      if (!answer.ok) {
        return;
      }
      const now = String((await answer.json()).version);
      if (now === version) {
        return;
      }
      const page = await fetch("/tasks/rows" + window.location.search, { credentials: "same-origin" });
      if (!page.ok) {
        return;
      }
      const html = await page.text();
      const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue");
      if (fresh) {
        queue.replaceChildren(...fresh.childNodes);
        version = fresh.dataset.version || now;
        queue.dataset.version = version;
      }
    } catch (e) {
      // The server is restarting or the network is down: try again on the next tick.
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, 500);
})();
