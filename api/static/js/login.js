// Sign-in on the page: a username/password form in the top bar. POST /session sets the
// HttpOnly, SameSite=Strict session cookie (the page never sees it); the answer's CSRF
// token is kept in memory by api.js and sent as X-CSRF-Token on writes. After a reload
// GET /session tells who is signed in and gives the CSRF token again. Signed in: the
// name, a password change and sign-out. Tokens stay for machines (`geogrid users`).
import { request, setCsrf, ApiError } from "./api.js";
import { el, byId, emit } from "./dom.js";
import { t } from "./i18n.js";

/** @type {{id: number, name: string, username: string|null, role: string}|null} */
let who = null;

const INPUT_STYLE = "width:7.5em;padding:3px 6px;border-radius:4px;border:1px solid #94a3b8";
const WIDE_INPUT_STYLE = INPUT_STYLE.replace("7.5em", "14em");
const BUTTON_STYLE = "padding:3px 10px;border-radius:4px;border:1px solid #94a3b8;"
  + "background:#23345c;color:#fff;cursor:pointer";

/** The signed-in account, or null. */
export function account() {
  return who;
}

function signedIn(session) {
  who = session ? session.account : null;
  setCsrf(session ? session.csrf_token : "");
  emit("session", who);
}

/**
 * The message for a refused sign-in: locked (429, minutes to wait) or wrong credentials.
 *
 * @param {unknown} e
 * @returns {string}
 */
export function loginErrorText(e) {
  if (e instanceof ApiError && e.status === 429) {
    const secs = Number((e.body && e.body.retry_after) || 60);
    return t("login_locked", { minutes: Math.max(1, Math.ceil(secs / 60)) });
  }
  if (e instanceof ApiError && e.status === 401) return t("login_wrong");
  return `${t("error")}: ${e && e.message ? e.message : e}`;
}

function loginForm(box) {
  const user = el("input", { id: "login-username", name: "username", autocomplete: "username",
    required: true, style: INPUT_STYLE, placeholder: t("username"), "data-i18n-ph": "username" });
  const pass = el("input", { id: "login-password", name: "password", type: "password",
    autocomplete: "current-password", required: true, style: INPUT_STYLE,
    placeholder: t("password"), "data-i18n-ph": "password" });
  const error = el("span", { id: "login-error", role: "alert", hidden: true,
    style: "color:#fca5a5;font-size:12px;max-width:16em" });
  const form = el("form", { id: "login-form", style: "display:flex;gap:6px;align-items:center" },
    user, pass,
    el("button", { id: "login-submit", type: "submit", style: BUTTON_STYLE, "data-i18n": "sign_in" },
      t("sign_in")),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      const session = await request("/session", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ username: user.value.trim(), password: pass.value }),
      });
      pass.value = "";
      signedIn(session);
      render(box);
    } catch (e) {
      pass.value = "";
      error.textContent = loginErrorText(e);
      error.hidden = false;
    }
  });
  return form;
}

function passwordForm() {
  const old = el("input", { id: "password-old", type: "password", autocomplete: "current-password",
    required: true, style: WIDE_INPUT_STYLE, placeholder: t("old_password") });
  const neu = el("input", { id: "password-new", type: "password", autocomplete: "new-password",
    required: true, minlength: "10", style: WIDE_INPUT_STYLE, placeholder: t("new_password") });
  const note = el("span", { id: "password-note", style: "font-size:12px" });
  const form = el("form", { style: "display:flex;gap:6px;align-items:center;flex-wrap:wrap" },
    old, neu, el("button", { type: "submit", style: BUTTON_STYLE }, t("change_password")), note);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await request("/session/password", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ old_password: old.value, new_password: neu.value }),
      });
      note.textContent = t("password_changed");
    } catch (e) {
      note.textContent = e instanceof ApiError ? e.message.replace(/^\d+: /, "") : String(e);
    }
    old.value = "";
    neu.value = "";
  });
  return el("details", { id: "password-change", style: "position:relative" },
    el("summary", { style: "cursor:pointer;font-size:12px;color:#cbd5e1" }, t("change_password")),
    el("div", { style: "position:absolute;right:0;top:1.8em;z-index:30;background:#14213d;"
      + "padding:8px;border-radius:4px;box-shadow:0 2px 8px rgba(0,0,0,.4)" }, form));
}

function signedInBar(box) {
  const logout = el("button", { id: "login-logout", type: "button", style: BUTTON_STYLE }, t("sign_out"));
  logout.addEventListener("click", async () => {
    try {
      await request("/session", { method: "DELETE" });
    } catch (e) {
      console.warn("sign out", e);
    }
    signedIn(null);
    render(box);
  });
  return el("div", { style: "display:flex;gap:8px;align-items:center" },
    el("span", { id: "login-who", title: who.username || "" }, `${who.name} · ${t("role_" + who.role)}`),
    passwordForm(), logout);
}

function render(box) {
  box.replaceChildren(who ? signedInBar(box) : loginForm(box));
}

/**
 * Put the sign-in box at the end of the top bar and show who is signed in (if anyone).
 *
 * @returns {Promise<void>}
 */
export async function initLogin() {
  let box = byId("login");
  if (!box) {
    box = el("div", { id: "login", style: "display:flex;align-items:center;margin-left:auto" });
    byId("topbar").append(box);
  }
  try {
    signedIn(await request("/session"));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) console.warn("session", e);
    signedIn(null);
  }
  render(box);
}

/** Label the box again in the current language. */
export function relabelLogin() {
  const box = byId("login");
  if (box) render(box);
}
