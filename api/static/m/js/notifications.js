// Notifications delivered on the next sync (GET /sync's notifications, or GET
// /notifications): new assignment, due soon, overdue, escalated. Marking one read is an
// outbox action (POST /notifications/{id}/read).
import { el } from "../../static/js/dom.js";
import { t, lang } from "./i18n.js";
import { M, localTime } from "./state.js";
import { submit } from "./sync.js";
import * as store from "./store.js";

/** Unread notifications. */
export function unread() {
  return (M.cache.notifications || []).filter((n) => !n.read_at).length;
}

/** The notification list. */
export function renderNotifications(root, changed) {
  const list = M.cache.notifications || [];
  root.replaceChildren(list.length
    ? el("ul", { id: "notif-list", class: "list" }, ...list.map((n) => {
      const incident = n.incident_id ?? (n.incident && n.incident.id);
      const title = (lang() === "zh" ? n.title_zh : n.title_en) || n.title_zh;
      const li = el("li", { class: `card${n.read_at ? "" : " unread"}`, "data-id": n.id },
        el("b", {}, t(`notif_${n.kind}`)), " ",
        incident ? t("incident_no", { id: incident }) : "",
        title ? el("div", {}, title) : null,
        el("div", { class: "hint" }, localTime(n.created_at)));
      if (!n.read_at) {
        const b = el("button", { type: "button", class: "btn" }, t("mark_read"));
        b.addEventListener("click", async () => {
          n.read_at = new Date().toISOString();
          await store.set("cache", M.cache);
          await submit({ kind: "read", method: "POST", path: `/notifications/${n.id}/read`, body: {} });
          renderNotifications(root, changed);
          if (changed) changed();
        });
        li.append(b);
      }
      return li;
    }))
    : el("p", { class: "hint" }, t("no_notifications")));
}
