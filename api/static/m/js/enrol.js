// Enrolment: the device is enrolled once with a code an admin issued (POST /terminals,
// anonymous: the code is the credential). The device's own token is kept in IndexedDB
// and sent with every request; revoking the device on the server cuts this phone off
// (401 terminal_revoked): the worker is told so and asked to enrol again. The outbox is
// kept through a re-enrolment.
import * as store from "./store.js";
import { call, setToken, APP_VERSION } from "./net.js";
import { apiError, isRevoked } from "./pure.js";
import { setBlocked, drain } from "./sync.js";
import { el } from "../../static/js/dom.js";
import { t } from "./i18n.js";
import { M } from "./state.js";

/** Load the enrolled device (if any) and use its token. */
export async function loadDevice() {
  M.device = (await store.get("device")) || null;
  setToken(M.device && !M.device.invalid ? M.device.token : "");
  return M.device;
}

/**
 * Enrol this device with `code`.
 *
 * @returns {Promise<{ok: boolean, message: string}>}
 */
const enrolKeys = new Map(); // code → Idempotency-Key: a retry of a lost answer is the same enrolment

export async function enrol(code, label) {
  const c = code.trim();
  if (!enrolKeys.has(c)) enrolKeys.set(c, store.newKey());
  const r = await call("POST", "/terminals", {
    headers: { "Idempotency-Key": enrolKeys.get(c) },
    json: { code: c, label: label || navigator.userAgent.slice(0, 60), app_version: APP_VERSION },
    anonymous: true,
  });
  if (r.status === 0) return { ok: false, message: t("enrol_needs_network") };
  if (r.status !== 201 && r.status !== 200) {
    return { ok: false, message: t("enrol_failed", { message: apiError(r.body, String(r.status)).message }) };
  }
  M.device = { ...r.body, enrolled_at: new Date().toISOString() };
  await store.set("device", M.device);
  setToken(M.device.token);
  setBlocked(false);
  drain();
  return { ok: true, message: t("enrol_done", { name: (r.body.account && r.body.account.name) || "" }) };
}

/**
 * Mark the device's credential as refused (401): revoked, or otherwise invalid.
 *
 * @returns {Promise<string>} the message to show
 */
export async function refused(body) {
  const revoked = isRevoked(body);
  const message = revoked ? t("revoked", { message: apiError(body, "").message }) : t("reauth");
  if (M.device) {
    M.device.invalid = true;
    M.device.revoked = revoked;
    M.device.message = message;
    await store.set("device", M.device);
  }
  setBlocked(true);
  setToken("");
  return message;
}

/**
 * The enrolment form.
 *
 * @param {(message: string) => void} done called after a successful enrolment
 * @param {string} [notice] why it is shown (a revoked device)
 * @returns {HTMLElement}
 */
export function enrolForm(done, notice) {
  const code = el("input", { id: "enrol-code", autocomplete: "one-time-code", required: true, inputmode: "text" });
  const label = el("input", { id: "enrol-label", value: "", placeholder: navigator.platform || "" });
  const msg = el("div", { id: "enrol-msg", class: "msg", role: "alert" });
  const form = el("form", { id: "enrol-form", class: "card" },
    el("h2", {}, t("enrol_title")),
    notice ? el("p", { id: "enrol-notice", class: "msg err" }, notice) : null,
    el("p", { class: "hint" }, t("enrol_help")),
    el("label", { class: "field" }, el("span", {}, t("enrol_code")), code),
    el("label", { class: "field" }, el("span", {}, t("enrol_label")), label),
    el("button", { type: "submit", class: "btn primary", id: "enrol-submit" }, t("enrol_submit")),
    msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await enrol(code.value, label.value.trim());
    msg.textContent = r.message;
    msg.classList.toggle("err", !r.ok);
    if (r.ok) done(r.message);
  });
  return form;
}
