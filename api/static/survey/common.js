// Shared helpers of the residents' survey pages (issue 14). No dependencies.

/** The token: the last segment of the page's path (/s/{token}, /e/{token}). */
export function tokenFromPath(pathname) {
  const parts = pathname.split("/").filter(Boolean);
  return parts.length >= 2 ? decodeURIComponent(parts[parts.length - 1]) : "";
}

/** A random key for one answer's retries (Idempotency-Key); works on plain http too. */
export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Fetch JSON (with an Idempotency-Key when `key` is given); throws an Error whose message is the server's (Chinese first). */
export async function api(method, url, body, key) {
  const init = { method, headers: { Accept: "application/json" } };
  if (key) init.headers["Idempotency-Key"] = key;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    // the API's ErrorBody: {"error": "LinkAnswered", "message": "…"}
    const e = data && typeof data.error === "object" ? data.error : data;
    const err = new Error(explain(r.status, e));
    err.status = r.status;
    throw err;
  }
  return data;
}

/** A message for an error answer, in Chinese and English. */
export function explain(status, error) {
  if (status === 404) return "链接无效，请检查地址。This link does not exist.";
  if (status === 429) return "请求过于频繁，请稍后再试。Too many requests: try again later.";
  if (error && error.message) return error.message;
  return `出错了 (${status})。Something went wrong.`;
}

/** A local date-time string (the phone's zone). */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "—" : d.toLocaleString("zh-CN", { hour12: false });
}

export function show(el, text, kind) {
  el.textContent = text;
  el.className = `msg ${kind}`;
}

/** Radio choices: [{value, label}] into container, named name. */
export function choices(container, name, items) {
  for (const { value, label } of items) {
    const l = document.createElement("label");
    const i = document.createElement("input");
    i.type = "radio";
    i.name = name;
    i.value = String(value);
    l.append(i, document.createTextNode(label));
    container.append(l);
  }
}

export function checked(form, name) {
  const el = form.querySelector(`input[name="${name}"]:checked`);
  return el ? el.value : null;
}
