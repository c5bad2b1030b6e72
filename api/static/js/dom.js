// Small DOM helpers and the page's events (a unit picked in the panel, a breadcrumb step).

/**
 * Create an element: attributes (class, on<event> handlers, others as attributes; null,
 * undefined and false are left out) and children (nodes or text; nested arrays flattened).
 *
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** The element with id `id`. */
export const byId = (id) => document.getElementById(id);

/** Show a message in the status box (hidden when empty). */
export function setStatus(msg) {
  const box = byId("status");
  box.hidden = !msg;
  box.textContent = msg || "";
}

const bus = new EventTarget();

/** Announce `name` with `detail` to the listeners of {@link on}. */
export function emit(name, detail) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}

/** Listen to `name`; `fn` gets the event's detail. */
export function on(name, fn) {
  bus.addEventListener(name, (e) => fn(e.detail));
}

/**
 * Wire a type-ahead box: `search(q)` runs `delayMs` after the last keystroke; Enter picks
 * the first shown match (`list.matches`) with `choose`, Escape and blur hide the list.
 */
export function bindSuggestions(input, list, { search, choose, delayMs }) {
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) {
      list.hidden = true;
      return;
    }
    timer = setTimeout(() => search(q), delayMs);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      const first = (list.matches || [])[0];
      if (!list.hidden && first) choose(first);
      else if (input.value.trim()) search(input.value.trim());
    } else if (e.key === "Escape") list.hidden = true;
  });
  input.addEventListener("blur", () => setTimeout(() => { list.hidden = true; }, 150));
}
