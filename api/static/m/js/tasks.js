// My tasks (GET /sync's tasks, or GET /tasks): overdue first, then by due time. Moves
// (accept, start, resolve with an "after" photo) and notes with photos are actions of the
// outbox carrying expected_updated_at: when someone else changed the incident meanwhile,
// the server answers 409 and the worker sees the conflict — nothing is overwritten.
import { el } from "../../static/js/dom.js";
import { t } from "./i18n.js";
import { M, toast, localTime, categoryName } from "./state.js";
import { submit } from "./sync.js";
import { sortTasks, NEXT_MOVES } from "./pure.js";
import { photoPicker } from "./media.js";
import * as store from "./store.js";

let rootEl = null;

async function localStatus(id, status) {
  const task = (M.cache.tasks || []).find((x) => x.id === id);
  if (task) {
    task.status = status;
    task.local = true; // until the next sync: the server's transitions are no longer known
    await store.set("cache", M.cache);
  }
}

function actionForm(task, kind) {
  const note = el("textarea", { rows: 2, maxlength: 2000, class: "t-note", placeholder: t("note") });
  const photos = photoPicker(`t-photo-${task.id}`, kind === "resolved" ? "after_photo" : "photos");
  const send = el("button", { type: "submit", class: "btn primary" }, t("send"));
  const cancel = el("button", { type: "button", class: "btn" }, t("cancel"));
  const form = el("form", { class: "t-form" }, note, photos.node, el("div", { class: "row" }, send, cancel));
  cancel.addEventListener("click", () => form.remove());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await photos.busy();
    const media = photos.items();
    if (kind === "resolved" && !media.length) return toast(t("need_after_photo"), true);
    if (kind === "note") {
      if (!note.value.trim() && !media.length) return undefined;
      await submit({ kind: "note", method: "POST", path: `/incidents/${task.id}/notes`, expect: task.id,
        body: { note: note.value.trim(), media }, media });
    } else {
      await submit({ kind: "transition", method: "POST", path: `/incidents/${task.id}/transitions`, expect: task.id,
        body: { status: kind, note: note.value.trim() || null, media }, media });
      await localStatus(task.id, kind);
    }
    toast(t("queued"));
    renderTasks(rootEl);
    return undefined;
  });
  return form;
}

function taskCard(task, now) {
  const late = task.overdue === true || (task.due_at && Date.parse(task.due_at) < now);
  const card = el("li", { class: `task card${late ? " late" : ""}`, "data-id": task.id },
    el("div", { class: "row spread" },
      el("b", {}, t("incident_no", { id: task.id })),
      el("span", { class: "badge" }, t(`status_${task.status}`) === `status_${task.status}` ? task.status : t(`status_${task.status}`))),
    el("div", {}, categoryName(task.category)),
    task.description ? el("div", { class: "hint" }, task.description) : null,
    el("div", { class: late ? "err" : "hint" }, late ? t("overdue") + " · " : "", task.due_at ? t("due", { time: localTime(task.due_at) }) : ""),
    task.local ? el("div", { class: "hint" }, t("queued")) : null);
  const buttons = el("div", { class: "row" });
  // the worker's usual next move, when the server (GET /tasks' transitions) allows it
  const allowed = Array.isArray(task.transitions) && !task.local ? task.transitions : null;
  for (const move of (NEXT_MOVES[task.status] || []).filter((m) => !allowed || allowed.includes(m))) {
    const b = el("button", { type: "button", class: "btn", "data-move": move }, t(`move_${move}`));
    b.addEventListener("click", async () => {
      if (move === "resolved") {
        card.append(actionForm(task, "resolved"));
        return;
      }
      await submit({ kind: "transition", method: "POST", path: `/incidents/${task.id}/transitions`, expect: task.id,
        body: { status: move } });
      await localStatus(task.id, move);
      toast(t("queued"));
      renderTasks(rootEl);
    });
    buttons.append(b);
  }
  const note = el("button", { type: "button", class: "btn", "data-move": "note" }, t("add_note"));
  note.addEventListener("click", () => card.append(actionForm(task, "note")));
  buttons.append(note);
  card.append(buttons);
  return card;
}

/** The task list. */
export function renderTasks(root) {
  rootEl = root;
  const now = Date.now();
  const tasks = sortTasks(M.cache.tasks || [], now);
  root.replaceChildren(tasks.length
    ? el("ul", { id: "task-list", class: "list" }, ...tasks.map((x) => taskCard(x, now)))
    : el("p", { class: "hint" }, t("no_tasks")));
}
