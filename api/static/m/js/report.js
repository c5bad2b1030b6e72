// Report an incident: category from the catalogue, description, position (GPS, map tap or
// typed coordinates with their crs), photos/videos. Saved to the outbox first (POST
// /incidents with media: [sha256…] and accuracy_m), sent when the network allows.
import { el } from "../../static/js/dom.js";
import { t, lang } from "./i18n.js";
import { M, toast } from "./state.js";
import { submit } from "./sync.js";
import { photoPicker } from "./media.js";
import { positionPicker } from "./position.js";

let picker = null;

/** The report form. */
export function renderReport(root) {
  const cats = M.cache.categories && M.cache.categories.length ? M.cache.categories : (M.config && M.config.categories) || [];
  const category = el("select", { id: "r-category", required: true },
    el("option", { value: "" }, t("choose")),
    ...cats.map((c) => el("option", { value: c.code }, lang() === "zh" ? c.name_zh : c.name_en || c.name_zh)));
  const description = el("textarea", { id: "r-description", rows: 3, maxlength: 4000, placeholder: t("description_ph") });
  picker = positionPicker("r", { map: true });
  const photos = photoPicker("r-photos", "photos");
  const msg = el("div", { id: "r-msg", class: "msg", role: "status" });
  const form = el("form", { id: "report-form", class: "card" },
    el("label", { class: "field" }, el("span", {}, t("category")), category),
    el("label", { class: "field" }, el("span", {}, t("description")), description),
    picker.node,
    photos.node,
    el("button", { type: "submit", class: "btn primary", id: "r-submit" }, t("submit_report")),
    msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const pos = picker.value();
    if (!category.value) return toast(t("need_category"), true);
    if (!pos) return toast(t("need_position"), true);
    await photos.busy();
    const media = photos.items();
    const body = {
      category: category.value,
      description: description.value.trim() || null,
      lon: pos.lon,
      lat: pos.lat,
      crs: pos.crs,
      reported_at: new Date().toISOString(),
    };
    if (pos.accuracy_m !== null && pos.accuracy_m !== undefined) body.accuracy_m = pos.accuracy_m;
    if (media.length) body.media = media;
    await submit({ kind: "report", method: "POST", path: "/incidents", body, media });
    msg.textContent = t("report_queued");
    description.value = "";
    category.value = "";
    photos.clear();
    picker.clear();
  });
  root.replaceChildren(form);
  picker.show();
}
