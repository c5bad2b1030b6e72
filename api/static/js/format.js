// Formatting of numbers, dates and times for display (pure: no DOM, no state).

/** The text shown for a missing value. */
export const MISSING = "–";

/**
 * A metric value as text: "–" when missing, km² for areas given in m², a percentage for
 * shares (0–1), integers with thousands separators, other numbers with 0–3 decimals
 * (fewer the larger the value).
 *
 * @param {unknown} v the value
 * @param {string} [key] the metric's key (area_m2 and resolved_within_limit_share have units)
 * @param {string} [locale] a BCP 47 locale; default: the browser's
 * @returns {string}
 */
export function formatValue(v, key, locale) {
  if (v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v))) return MISSING;
  if (typeof v !== "number") return String(v);
  if (key === "area_m2") return (v / 1e6).toLocaleString(locale, { maximumFractionDigits: 2 });
  if (key === "resolved_within_limit_share") return (v * 100).toFixed(1) + "%";
  if (Number.isInteger(v)) return v.toLocaleString(locale);
  const a = Math.abs(v);
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
  return v.toLocaleString(locale, { maximumFractionDigits: digits });
}

/**
 * A class break or class bound of a metric as text, with up to three significant digits
 * (breaks have two; a data minimum or maximum may need the third) in the unit that
 * {@link formatValue} shows, so that consecutive bounds never read alike.
 *
 * @param {number} v
 * @param {string} [key] the metric's key
 * @param {string} [locale]
 * @returns {string}
 */
export function formatBound(v, key, locale) {
  if (typeof v !== "number" || !Number.isFinite(v)) return formatValue(v, key, locale);
  const sig = { maximumSignificantDigits: 3 };
  if (key === "area_m2") return (v / 1e6).toLocaleString(locale, sig);
  if (key === "resolved_within_limit_share") return (v * 100).toLocaleString(locale, sig) + "%";
  if (Number.isInteger(v) || Math.abs(v) >= 1000) return formatValue(v, key, locale);
  return v.toLocaleString(locale, sig);
}

/**
 * The calendar date (YYYY-MM-DD) of an instant in a time zone.
 *
 * @param {Date} instant
 * @param {string} [timeZone] an IANA zone, e.g. "Asia/Shanghai"; default: the browser's
 * @returns {string}
 */
export function isoDate(instant, timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(instant);
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/**
 * The date `days` days before `instant`, in a time zone (YYYY-MM-DD).
 *
 * @param {Date} instant
 * @param {number} days
 * @param {string} [timeZone]
 * @returns {string}
 */
export function daysBefore(instant, days, timeZone) {
  return isoDate(new Date(instant.getTime() - days * 864e5), timeZone);
}

/**
 * An RFC 3339 time as "YYYY-MM-DD HH:MM" in a time zone ("" when missing or invalid).
 *
 * @param {string|null|undefined} rfc3339 e.g. "2026-03-01T08:00:00+00:00"
 * @param {string} [timeZone]
 * @returns {string}
 */
export function localDateTime(rfc3339, timeZone) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return String(rfc3339);
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(d);
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}

/**
 * The calendar date (YYYY-MM-DD) of a date or time in a time zone: a date alone
 * ("2026-03-02") is kept as it is, a time with an offset is converted to the zone.
 *
 * @param {string|null|undefined} value e.g. "2026-03-01T16:00:00+00:00"
 * @param {string} [timeZone]
 * @returns {string} "" when missing
 */
export function localDate(value, timeZone) {
  if (!value) return "";
  const s = String(value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return s;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : isoDate(d, timeZone);
}

/**
 * A time overdue as days and hours, e.g. "2天5小时" (zh) or "2 d 5 h" (en); under a day
 * only hours ("5小时"), under an hour "<1小时".
 *
 * @param {number|null|undefined} hours hours overdue
 * @param {string} [lang] "zh" or "en"
 * @returns {string}
 */
export function formatOverdue(hours, lang = "zh") {
  if (typeof hours !== "number" || !Number.isFinite(hours)) return MISSING;
  const total = Math.max(0, Math.floor(hours));
  const d = Math.floor(total / 24);
  const h = total % 24;
  const [du, hu, sp] = lang === "en" ? [" d", " h", " "] : ["天", "小时", ""];
  if (total < 1) return `<1${hu}`;
  if (!d) return `${h}${hu}`;
  return h ? `${d}${du}${sp}${h}${hu}` : `${d}${du}`;
}

/**
 * A round length for a scale bar no longer than `maxMetres`: 1, 2 or 5 × 10^n metres.
 *
 * @param {number} maxMetres
 * @returns {{metres: number, label: string}} e.g. {metres: 2000, label: "2 km"}
 */
export function scaleLength(maxMetres) {
  if (!(maxMetres > 0)) return { metres: 0, label: "0 m" };
  const pow = 10 ** Math.floor(Math.log10(maxMetres));
  const step = [5, 2, 1].find((s) => s * pow <= maxMetres) || 1;
  const metres = step * pow;
  return { metres, label: metres >= 1000 ? `${metres / 1000} km` : `${metres} m` };
}

/**
 * The date window shown, as "YYYY-MM-DD – YYYY-MM-DD" (an open end is today).
 *
 * @param {{from?: string, to?: string}} filter
 * @param {string} today YYYY-MM-DD
 * @returns {string}
 */
export function windowText(filter, today) {
  return `${filter.from || "…"} – ${filter.to || today}`;
}
