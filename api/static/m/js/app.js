// The grid worker's phone app (/m/): enrolment, report, tasks, patrol, the daily service
// register and notifications, offline first. Native ES modules, no build step; MapLibre
// is the web page's vendored copy. Everything the worker does goes to the outbox
// (IndexedDB, store.js) and is sent by sync.js when the network allows; the service
// worker (/m/sw.js) keeps the app's files for offline starts.
import { el, byId } from "../../static/js/dom.js";
import { t, lang, setLang, applyI18n } from "./i18n.js";
import * as store from "./store.js";
import { onAnswer } from "./net.js";
import { drain, pull, idle, onChange, setBlocked } from "./sync.js";
import { loadDevice, enrolForm, refused } from "./enrol.js";
import { M, toast, localTime } from "./state.js";
import { renderReport } from "./report.js";
import { renderTasks } from "./tasks.js";
import { renderPatrol, resumePatrol, patrolState } from "./patrol.js";
import { renderRegister } from "./register.js";
import { renderNotifications, unread } from "./notifications.js";
import { actionLabel } from "./pure.js";

const VIEWS = {
  report: renderReport,
  tasks: renderTasks,
  patrol: renderPatrol,
  register: renderRegister,
  notes: (root) => renderNotifications(root, drawBar),
};
let tab = "report";

function show(name) {
  tab = name;
  document.querySelectorAll("#tabs button").forEach((b) => {
    b.classList.toggle("active", b.dataset.tab === name);
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  });
  byId("outbox").hidden = true;
  VIEWS[name](byId("view"));
}

function showEnrol(notice) {
  byId("tabs").hidden = true;
  byId("view").replaceChildren(enrolForm(async (message) => {
    toast(message);
    await start();
  }, notice));
}

async function drawBar() {
  const net = byId("net");
  net.textContent = navigator.onLine ? t("online") : t("offline");
  net.classList.toggle("off", !navigator.onLine);
  const actions = await store.outbox();
  const open = actions.filter((a) => a.state !== "done");
  const btn = byId("outbox-btn");
  btn.textContent = t("outbox_count", { n: open.length });
  btn.classList.toggle("busy", open.length > 0);
  const notes = document.querySelector("#tabs button[data-tab=notes]");
  const n = unread();
  notes.textContent = t("tab_notes") + (n ? ` (${n})` : "");
  const who = byId("who");
  who.textContent = M.device && M.device.account
    ? `${M.device.account.name || ""} · ${M.cache.synced_at ? t("synced_at", { time: localTime(M.cache.synced_at) }) : t("never_synced")}`
    : "";
  if (!byId("outbox").hidden) drawOutbox(actions);
}

function statusName(status) {
  if (!status) return "?";
  const label = t(`status_${status}`);
  return label === `status_${status}` ? status : label;
}

function drawOutbox(actions) {
  const box = byId("outbox");
  const shown = actions.filter((a) => a.state !== "done").sort((a, b) => a.seq - b.seq);
  box.replaceChildren(el("h2", {}, t("outbox")), shown.length
    ? el("ul", { id: "outbox-list", class: "list" }, ...shown.map((a) => {
      const li = el("li", { class: "card", "data-state": a.state, "data-kind": a.kind },
        el("div", { class: "row spread" }, el("b", {}, t(`act_${a.kind}`)), el("span", { class: "badge" }, t(`state_${a.state}`))),
        el("div", { class: "hint" }, actionLabel(a)),
        a.state === "conflict"
          ? el("div", { class: "err" }, t("conflict_text", { status: statusName(a.current && a.current.status) }))
          : null,
        a.error ? el("div", { class: a.state === "pending" ? "hint" : "err" }, a.error) : null,
        a.state === "pending" && a.next_at > Date.now()
          ? el("div", { class: "hint" }, t("retry_in", { s: Math.ceil((a.next_at - Date.now()) / 1000) })) : null);
      if (a.state === "conflict" || a.state === "parked") {
        const b = el("button", { type: "button", class: "btn" }, t("dismiss"));
        b.addEventListener("click", async () => {
          await store.dropAction(a.seq);
          drawBar();
        });
        li.append(b);
      }
      return li;
    }))
    : el("p", { class: "hint" }, t("outbox_empty")));
}

async function refresh() {
  if (await pull()) {
    M.config = (await store.get("config")) || M.config;
    M.cache = (await store.get("cache")) || M.cache;
    // the lists show the fresh data, unless the worker is filling in a form there
    if ((tab === "tasks" || tab === "notes") && !byId("view").querySelector(".t-form")) show(tab);
  }
  drawBar();
}

async function wake() { // the network is back: try everything now
  for (const a of await store.outbox()) {
    if (a.state === "pending" && (a.next_at || a.attempts)) {
      a.next_at = 0;
      a.attempts = 0; // failures while offline say nothing about the server
      await store.saveAction(a);
    }
  }
  drain();
  refresh();
}

const KEEP_DONE_MS = 3 * 24 * 3600 * 1000; // sent actions stay listed for three days

async function prune() {
  const now = Date.now();
  for (const a of await store.outbox()) {
    if (a.state === "done" && a.done_at && now - Date.parse(a.done_at) > KEEP_DONE_MS) await store.dropAction(a.seq);
  }
}

async function start() {
  byId("tabs").hidden = false;
  await prune();
  M.config = (await store.get("config")) || null;
  M.cache = (await store.get("cache")) || {};
  if (!M.config && navigator.onLine) await refresh();
  setBlocked(false);
  show(tab);
  drawBar();
  drain();
  if (navigator.onLine) refresh();
}

async function init() {
  applyI18n();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch((e) => console.warn("sw", e));
  }
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
  byId("outbox-btn").addEventListener("click", async () => {
    const box = byId("outbox");
    box.hidden = !box.hidden;
    if (!box.hidden) drawOutbox(await store.outbox());
  });
  byId("lang-btn").addEventListener("click", () => {
    setLang(lang() === "zh" ? "en" : "zh");
    applyI18n();
    drawBar();
    if (M.device && !M.device.invalid) show(tab);
    else showEnrol(M.device && M.device.message);
  });
  byId("refresh-btn").addEventListener("click", async () => {
    const b = byId("refresh-btn");
    b.disabled = true;
    try {
      await drain();
      await refresh();
    } finally {
      b.disabled = false;
    }
  });
  window.addEventListener("online", () => { drawBar(); wake(); });
  window.addEventListener("offline", drawBar);
  onChange(drawBar);
  onAnswer(async (status, body, path) => {
    if (status !== 401 || path === "/terminals") return;
    const message = await refused(body);
    showEnrol(message);
  });
  await resumePatrol();
  drawBar();
  const device = await loadDevice();
  if (!device || device.invalid) {
    if (device) setBlocked(true);
    showEnrol(device && device.message);
  } else await start();
  document.body.dataset.ready = "1";
}

// the hook of the browser test (tests/test_mobile.py)
window.geogridM = { M, drain, pull, idle, outbox: store.outbox, patrolState, show };

init().catch((e) => {
  console.warn(e);
  toast(`${t("error")}: ${e.message}`, true);
  document.body.dataset.ready = "1";
});
