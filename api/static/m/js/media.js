// Photos and short videos taken on the phone: images are redrawn on a canvas to at most
// 1600 px on the long side as JPEG (smaller uploads; orientation applied; the canvas drops
// EXIF, so only a JPEG already within 1600 px keeps its EXIF position and time), then hashed
// (SHA-256, the server's key for media) and kept in IndexedDB until uploaded.
import { fitWithin, sha256Hex } from "./pure.js";
import { putBlob } from "./store.js";
import { el } from "../../static/js/dom.js";
import { t } from "./i18n.js";

/** Limits of the server (PUT /media): images ≤ 10 MB, videos ≤ 50 MB. */
export const MAX_IMAGE = 10 * 1024 * 1024;
export const MAX_VIDEO = 50 * 1024 * 1024;
export const MAX_SIDE = 1600;

/**
 * An image file as a JPEG blob of at most MAX_SIDE px on its long side.
 *
 * @param {File|Blob} file
 * @returns {Promise<Blob>}
 */
export async function resizeImage(file) {
  const bmp = await createImageBitmap(file);
  const { width, height, scaled } = fitWithin(bmp.width, bmp.height, MAX_SIDE);
  if (!scaled && file.type === "image/jpeg") { // small enough: kept as taken, with its EXIF
    bmp.close();
    return file;
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(bmp, 0, 0, width, height);
  bmp.close();
  return new Promise((resolve, reject) => canvas.toBlob(
    (b) => (b ? resolve(b) : reject(new Error("canvas.toBlob gave nothing"))), "image/jpeg", 0.85));
}

/**
 * Prepare the files a worker picked: resized, hashed and stored.
 *
 * @param {FileList|File[]} files
 * @returns {Promise<{items: Array<{sha256: string, type: string, size: number, url: string}>, errors: string[]}>}
 */
export async function prepare(files) {
  const items = [];
  const errors = [];
  for (const f of Array.from(files || [])) {
    try {
      const video = (f.type || "").startsWith("video/");
      const blob = video ? f : await resizeImage(f);
      if (blob.size > (video ? MAX_VIDEO : MAX_IMAGE)) {
        errors.push(t("photo_too_big", { name: f.name }));
        continue;
      }
      const sha256 = await sha256Hex(await blob.arrayBuffer());
      await putBlob(sha256, blob);
      items.push({ sha256, type: blob.type, size: blob.size, url: URL.createObjectURL(blob) });
    } catch (e) {
      errors.push(`${f.name}: ${e.message || e}`);
    }
  }
  return { items, errors };
}

/**
 * A photo picker: the file input (camera) and thumbnails of what was taken.
 *
 * @param {string} id the input's id
 * @param {string} labelKey
 * @returns {{node: HTMLElement, items: () => string[], clear: () => void, busy: () => Promise<void>}}
 */
export function photoPicker(id, labelKey) {
  let items = [];
  let work = Promise.resolve();
  const thumbs = el("div", { class: "thumbs" });
  const msg = el("div", { class: "msg err", role: "alert" });
  const input = el("input", { id, type: "file", accept: "image/*,video/*", capture: "environment", multiple: true });
  const draw = () => thumbs.replaceChildren(...items.map((m) => (m.type.startsWith("video/")
    ? el("video", { src: m.url, muted: true, title: m.sha256 })
    : el("img", { src: m.url, alt: "", title: m.sha256 }))));
  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    work = work.then(async () => {
      const got = await prepare(files);
      items = items.concat(got.items);
      msg.textContent = got.errors.join("; ");
      input.value = "";
      draw();
    });
  });
  const node = el("label", { class: "field" }, el("span", { "data-i18n": labelKey }, t(labelKey)), input, thumbs, msg);
  return {
    node,
    items: () => items.map((m) => m.sha256),
    clear: () => { items = []; draw(); },
    busy: () => work,
  };
}
