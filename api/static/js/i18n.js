// The page's languages: one table per language (../i18n/*.js, same keys), the current
// language (kept in localStorage) and one translate function.
import zh from "../i18n/zh.js";
import en from "../i18n/en.js";

/** The label tables by language; the first is the default. */
export const TABLES = { zh, en };
export const LANGS = Object.keys(TABLES);
const STORE_KEY = "geogrid.lang";

let current = null;

/**
 * The label of `key` in `table`, with "{name}" placeholders replaced by `vars[name]`;
 * the default language's label when `table` lacks the key, else the key itself.
 *
 * @param {Record<string, string>} table
 * @param {string} key
 * @param {Record<string, string|number>} [vars]
 * @returns {string}
 */
export function translate(table, key, vars) {
  const text = key in table ? table[key] : key in TABLES[LANGS[0]] ? TABLES[LANGS[0]][key] : key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** The current language ("zh" or "en"). */
export function lang() {
  if (current === null) {
    const stored = globalThis.localStorage ? localStorage.getItem(STORE_KEY) : null;
    current = LANGS.includes(stored) ? stored : LANGS[0];
  }
  return current;
}

/** Switch the language (remembered in localStorage). */
export function setLang(value) {
  current = LANGS.includes(value) ? value : LANGS[0];
  localStorage.setItem(STORE_KEY, current);
}

/**
 * The label of `key` in the current language.
 *
 * @param {string} key
 * @param {Record<string, string|number>} [vars]
 * @returns {string}
 */
export function t(key, vars) {
  return translate(TABLES[lang()], key, vars);
}

/** Whether the tables have a label for `key`. */
export function hasLabel(key) {
  return key in TABLES[lang()] || key in TABLES[LANGS[0]];
}

/**
 * Label the static page: elements with a data-i18n key get their text, data-i18n-title
 * their tooltip, data-i18n-ph their placeholder; the document its language and title.
 *
 * @param {Record<string, string|number>} vars placeholders (e.g. {city})
 * @param {ParentNode} [root]
 */
export function applyI18n(vars, root = document) {
  root.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n, vars); });
  root.querySelectorAll("[data-i18n-title]").forEach((e) => { e.title = t(e.dataset.i18nTitle, vars); });
  root.querySelectorAll("[data-i18n-ph]").forEach((e) => { e.placeholder = t(e.dataset.i18nPh, vars); });
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  document.title = t("title", vars);
}
