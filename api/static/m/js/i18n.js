// The phone app's languages: Chinese first, English (tables in ../i18n/*.js, same keys);
// the choice is kept in localStorage.
import zh from "../i18n/zh.js";
import en from "../i18n/en.js";

const TABLES = { zh, en };
const LANGS = Object.keys(TABLES);
const KEY = "geogrid.m.lang";
let current = null;

/** The current language ("zh" or "en"). */
export function lang() {
  if (current === null) {
    const stored = localStorage.getItem(KEY);
    current = LANGS.includes(stored) ? stored : LANGS[0];
  }
  return current;
}

/** Switch the language (remembered). */
export function setLang(value) {
  current = LANGS.includes(value) ? value : LANGS[0];
  localStorage.setItem(KEY, current);
}

/** The label of `key` in the current language with "{name}" placeholders filled. */
export function t(key, vars) {
  const table = TABLES[lang()];
  const text = key in table ? table[key] : key in zh ? zh[key] : key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Label the static elements (data-i18n text, data-i18n-ph placeholders). */
export function applyI18n(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  root.querySelectorAll("[data-i18n-ph]").forEach((e) => { e.placeholder = t(e.dataset.i18nPh); });
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  document.title = t("title");
}
