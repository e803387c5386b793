// reel web UI. No inline script anywhere: pages carry their data in
// data-* attributes, and everything from a recording is set as text
// (textContent), never as markup.
"use strict";

(function () {
  // "1:23", "1:02:03", "83" or "83.5" -> seconds; NaN when not a time.
  function parseMoment(s) {
    if (!s) return NaN;
    const parts = s.split(":");
    if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return NaN;
    return parts.reduce((acc, p) => acc * 60 + parseFloat(p), 0);
  }

  function formatMoment(sec) {
    sec = Math.max(0, Math.floor(sec));
    const h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  }

  function hashMoment() {
    const m = /^#t=([0-9:.]+)$/.exec(location.hash);
    return m ? parseMoment(m[1]) : NaN;
  }

  function setupPlayer(el) {
    const format = el.dataset.format;
    const speedSel = document.getElementById("speed");
    const idleSel = document.getElementById("idle");
    let player = null;

    function create(startAt) {
      if (player) {
        player.dispose();
        player = null;
      }
      el.textContent = "";
      const opts = {
        preload: true,
        controls: true,
        fit: "width",
        speed: parseFloat(speedSel ? speedSel.value : "1") || 1,
      };
      if (!isNaN(startAt) && startAt > 0) {
        // Open at the moment: start there, and show its screen before play.
        opts.startAt = startAt;
        opts.poster = "npt:" + startAt;
      }
      let src;
      if (format === "live") {
        const proto = location.protocol === "https:" ? "wss://" : "ws://";
        src = { driver: "websocket", url: proto + location.host + el.dataset.src, bufferTime: 0 };
        opts.autoPlay = true;
        delete opts.startAt;
        delete opts.poster;
      } else if (format === "segmented") {
        src = { url: el.dataset.src, format: "segmented" };
      } else {
        src = { url: el.dataset.src };
        const idle = idleSel ? parseFloat(idleSel.value) : NaN;
        if (!isNaN(idle) && idle > 0) opts.idleTimeLimit = idle;
      }
      player = AsciinemaPlayer.create(src, el, opts);
      window.reelPlayer = player;
      el.dataset.created = String((el.dataset.created | 0) + 1);
    }

    function current() {
      try {
        const t = player && player.getCurrentTime();
        return typeof t === "number" ? t : 0;
      } catch (e) {
        return 0;
      }
    }

    function start() {
      create(hashMoment());
      if (speedSel) speedSel.addEventListener("change", () => create(current()));
      if (idleSel) idleSel.addEventListener("change", () => create(current()));
      window.addEventListener("hashchange", () => {
        const t = hashMoment();
        if (!isNaN(t) && player) player.seek(t);
      });
      const link = document.getElementById("link");
      if (link) {
        link.addEventListener("click", (ev) => {
          ev.preventDefault();
          history.replaceState(null, "", "#t=" + formatMoment(current()));
          link.href = location.href;
          if (navigator.clipboard) navigator.clipboard.writeText(location.href).catch(() => {});
        });
      }
      for (const a of document.querySelectorAll("#rechits a.moment")) {
        a.addEventListener("click", (ev) => {
          ev.preventDefault();
          const t = parseFloat(a.dataset.t);
          history.replaceState(null, "", a.getAttribute("href"));
          if (player && !isNaN(t)) player.seek(t);
        });
      }
    }

    const prepareURL = el.dataset.prepare;
    if (format === "segmented" && prepareURL) {
      const box = document.getElementById("prepare");
      const pct = document.getElementById("progress");
      box.hidden = false;
      const poll = () => {
        fetch(prepareURL, { credentials: "same-origin" })
          .then((r) => r.json())
          .then((st) => {
            if (st.error) {
              box.textContent = "This recording cannot be played: " + st.error;
              return;
            }
            pct.textContent = String(st.progress);
            if (st.done) {
              box.hidden = true;
              start();
            } else {
              setTimeout(poll, 500);
            }
          })
          .catch(() => setTimeout(poll, 2000));
      };
      poll();
    } else {
      start();
    }
  }

  // The list: live rows are refreshed every few seconds.
  function setupList(table) {
    const statuses = ["live", "complete", "interrupted", "malformed", "failed"];
    function refresh() {
      const live = table.querySelectorAll("tr.rec.live");
      if (live.length === 0) return;
      const q = new URLSearchParams();
      for (const tr of live) q.append("k", tr.dataset.key);
      fetch("/api/rows?" + q.toString(), { credentials: "same-origin" })
        .then((r) => r.json())
        .then((rows) => {
          for (const row of rows) {
            for (const tr of live) {
              if (tr.dataset.key !== row.key) continue;
              tr.querySelector(".size").textContent = row.size;
              tr.querySelector(".dur").textContent = row.duration;
              const badge = tr.querySelector(".badge");
              badge.textContent = row.status;
              badge.className = "badge" + (statuses.includes(row.status) ? " " + row.status : "");
              if (row.status !== "live") tr.classList.remove("live");
            }
          }
        })
        .catch(() => {});
    }
    setInterval(refresh, 3000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("player");
    if (el) setupPlayer(el);
    const table = document.getElementById("recordings");
    if (table) setupList(table);
  });
})();
