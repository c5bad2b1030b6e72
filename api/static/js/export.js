// Print and export: the current view as a PNG, and a one-page PDF (vendored jsPDF) of the
// same sheet: title, the map, its legend, a scale bar, a north arrow, the date window and
// the source line. The sheet is drawn on a canvas with the browser's fonts (Chinese
// included), then saved as an image or placed on an A4 landscape page.
import { isoDate, localDateTime, scaleLength, windowText } from "./format.js";
import { t } from "./i18n.js";
import { getMap } from "./map-layers.js";
import { S, categoryName, cityName, displayLevel, levelName, metricLabel } from "./state.js";

const FONT = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif";

/** The title of the sheet: the city, the metric and the level shown (and the drill path). */
function title() {
  const where = S.path.length ? S.path[S.path.length - 1].name : cityName();
  return `${where} · ${metricLabel(S.metric)} · ${levelName(displayLevel())}`;
}

// the legend as drawn on the page: [{kind: "h"|"row"|"sep"|"note", text, fill, stroke}]
function legendItems() {
  const box = document.getElementById("legend");
  const items = [];
  if (!box || box.hidden) return items;
  const walk = (nodes) => {
    for (const c of nodes) {
      if (c.tagName === "H4") items.push({ kind: "h", text: c.textContent });
      else if (c.classList.contains("sep")) items.push({ kind: "sep" });
      else if (c.classList.contains("row")) {
        const sw = c.querySelector(".sw");
        const st = sw ? getComputedStyle(sw) : null;
        items.push({ kind: "row", text: c.textContent, fill: st ? st.backgroundColor : "#ccc",
          stroke: st && parseFloat(st.borderTopWidth) >= 2 ? st.borderTopColor : null });
      } else if (c.tagName === "DIV") walk(c.children);
      else if (c.textContent) items.push({ kind: "note", text: c.textContent });
    }
  };
  walk(box.children);
  return items;
}

function drawLegend(ctx, items, x, yBottom) {
  const lh = 18;
  const h = items.reduce((a, i) => a + (i.kind === "sep" ? 8 : lh), 0) + 12;
  ctx.font = `12px ${FONT}`;
  const w = Math.max(150, ...items.map((i) => ctx.measureText(i.text || "").width + (i.kind === "row" ? 36 : 16)));
  let y = yBottom - h;
  ctx.fillStyle = "rgba(255,255,255,0.92)";
  ctx.fillRect(x, y, w, h);
  ctx.strokeStyle = "#94a3b8";
  ctx.strokeRect(x + 0.5, y + 0.5, w, h);
  y += 6;
  for (const i of items) {
    if (i.kind === "sep") {
      y += 8;
      continue;
    }
    ctx.fillStyle = "#1f2933";
    ctx.font = `${i.kind === "h" ? "bold " : ""}12px ${FONT}`;
    if (i.kind === "row") {
      ctx.fillStyle = i.fill;
      ctx.fillRect(x + 8, y + 3, 18, 12);
      ctx.strokeStyle = i.stroke || "rgba(0,0,0,0.3)";
      ctx.lineWidth = i.stroke ? 2 : 1;
      ctx.strokeRect(x + 8, y + 3, 18, 12);
      ctx.lineWidth = 1;
      ctx.fillStyle = "#1f2933";
      ctx.fillText(i.text, x + 32, y + 13);
    } else ctx.fillText(i.text, x + 8, y + 13);
    y += lh;
  }
}

function drawScaleBar(ctx, map, x, y) {
  const c = map.getCanvas();
  const w = c.clientWidth;
  const h = c.clientHeight;
  const a = map.unproject([w / 2 - 60, h / 2]);
  const b = map.unproject([w / 2 + 60, h / 2]);
  const perPx = a.distanceTo(b) / 120;
  const { metres, label } = scaleLength(perPx * 160);
  const len = metres / perPx;
  ctx.fillStyle = "rgba(255,255,255,0.9)";
  ctx.fillRect(x - len - 14, y - 30, len + 20, 34);
  ctx.strokeStyle = "#1f2933";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x - len - 6, y - 12);
  ctx.lineTo(x - len - 6, y - 4);
  ctx.lineTo(x - 6, y - 4);
  ctx.lineTo(x - 6, y - 12);
  ctx.stroke();
  ctx.lineWidth = 1;
  ctx.fillStyle = "#1f2933";
  ctx.font = `12px ${FONT}`;
  ctx.textAlign = "center";
  ctx.fillText(label, x - len / 2 - 6, y - 16);
  ctx.textAlign = "left";
}

function drawNorthArrow(ctx, x, y) {
  ctx.fillStyle = "rgba(255,255,255,0.9)";
  ctx.beginPath();
  ctx.arc(x, y, 22, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#1f2933";
  ctx.beginPath();
  ctx.moveTo(x, y - 16);
  ctx.lineTo(x + 8, y + 10);
  ctx.lineTo(x, y + 5);
  ctx.lineTo(x - 8, y + 10);
  ctx.closePath();
  ctx.fill();
  ctx.font = `bold 11px ${FONT}`;
  ctx.textAlign = "center";
  ctx.fillText("N", x, y + 21);
  ctx.textAlign = "left";
}

/**
 * The sheet of the current view on a canvas (CSS pixels × the device pixel ratio).
 *
 * @returns {HTMLCanvasElement}
 */
export function composeSheet() {
  const map = getMap();
  map.triggerRepaint();
  const src = map.getCanvas();
  const mw = src.clientWidth;
  const mh = src.clientHeight;
  const head = 56;
  const foot = 36;
  const ratio = src.width / mw;
  const sheet = document.createElement("canvas");
  sheet.width = Math.round(mw * ratio);
  sheet.height = Math.round((mh + head + foot) * ratio);
  const ctx = sheet.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, mw, mh + head + foot);
  ctx.drawImage(src, 0, head, mw, mh);
  ctx.strokeStyle = "#64748b";
  ctx.strokeRect(0.5, head + 0.5, mw - 1, mh - 1);
  const tz = S.config.city.timezone;
  const today = isoDate(new Date(), tz);
  ctx.fillStyle = "#14213d";
  ctx.font = `bold 20px ${FONT}`;
  ctx.fillText(title(), 12, 26);
  ctx.font = `13px ${FONT}`;
  ctx.fillStyle = "#475569";
  const category = S.category ? ` · ${categoryName(S.category)}` : "";
  ctx.fillText(`${t("date_window")}: ${windowText(S, today)}${category}`, 12, 46);
  drawLegend(ctx, legendItems(), 10, head + mh - 10);
  drawScaleBar(ctx, map, mw - 10, head + mh - 10);
  drawNorthArrow(ctx, mw - 34, head + 34);
  ctx.font = `11px ${FONT}`;
  ctx.fillStyle = "#475569";
  const printed = localDateTime(new Date().toISOString(), tz);
  ctx.fillText(`${t("export_source")}: ${S.config.city.source} · ${t("printed_at")}: ${printed} (${tz})`,
    12, head + mh + 22);
  return sheet;
}

function fileName(ext) {
  const day = isoDate(new Date(), S.config.city.timezone);
  return `${cityName()}-${S.metric}-${day}.${ext}`;
}

function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Save the sheet of the current view as a PNG. */
export function exportPng() {
  composeSheet().toBlob((blob) => download(blob, fileName("png")), "image/png");
}

/** Save the sheet of the current view as a one-page A4 landscape PDF. */
export function exportPdf() {
  const { jsPDF } = window.jspdf; // vendor/jspdf, loaded by index.html as a classic script
  const sheet = composeSheet();
  const doc = new jsPDF({ orientation: "landscape", unit: "mm", format: "a4" });
  const pw = doc.internal.pageSize.getWidth() - 20;
  const ph = doc.internal.pageSize.getHeight() - 20;
  const scale = Math.min(pw / sheet.width, ph / sheet.height);
  const w = sheet.width * scale;
  const h = sheet.height * scale;
  doc.setProperties({ title: title(), creator: "geogrid" });
  doc.addImage(sheet.toDataURL("image/jpeg", 0.92), "JPEG", 10 + (pw - w) / 2, 10, w, h);
  download(doc.output("blob"), fileName("pdf"));
}
