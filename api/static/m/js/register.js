// The daily service register (为民服务事项登记表): each service item of the day — kind,
// household/building, people, result, note, photos — as an outbox action POST
// /register/entries {day (the city's calendar day), kind, household_id?, building_id?,
// people_count, result, note?, lon?, lat?, crs?, media?}.
import { el } from "../../static/js/dom.js";
import { t } from "./i18n.js";
import { M, toast, cityTz, buildingOptions } from "./state.js";
import { submit } from "./sync.js";
import { dayIn } from "./pure.js";
import { photoPicker } from "./media.js";
import { gpsFix } from "./position.js";
import * as store from "./store.js";

/** The kinds of service items (geogrid/core/service_register.py SERVICE_KINDS). */
export const SERVICE_KINDS = ["visit", "mediation", "paperwork", "hazard", "policy", "other"];

async function todayCount() {
  const day = dayIn(new Date(), cityTz());
  return (await store.outbox()).filter((a) => a.kind === "entry" && a.body && a.body.day === day).length;
}

/** The register form. */
export function renderRegister(root) {
  const kinds = (M.config && M.config.service_kinds && M.config.service_kinds.map((k) => k.code || k)) || SERVICE_KINDS;
  const kind = el("select", { id: "e-kind" }, ...kinds.map((k) => el("option", { value: k }, t(`kind_${k}`))));
  const building = el("select", { id: "e-building" }, el("option", { value: "" }, t("none")),
    ...buildingOptions().map((b) => el("option", { value: b.id }, b.name)));
  // people due a visit (the /sync bundle's care list): picking one fills the entry's
  // person, household and building
  const care = M.cache.care || [];
  const person = el("select", { id: "e-person" }, el("option", { value: "" }, t("none")),
    ...care.map((p, i) => el("option", { value: i },
      `${p.name || ""} · ${p.address || ""}${p.overdue ? ` · ${t("overdue")}` : ""}`)));
  person.addEventListener("change", () => {
    const p = care[Number(person.value)];
    if (!p || person.value === "") return;
    kind.value = "visit";
    if (p.building_id !== null && p.building_id !== undefined) building.value = String(p.building_id);
  });
  const people = el("input", { id: "e-people", type: "number", min: 0, max: 10000, value: 1 });
  const result = el("input", { id: "e-result", maxlength: 500, placeholder: t("result_ph") });
  const note = el("textarea", { id: "e-note", rows: 2, maxlength: 2000 });
  const photos = photoPicker("e-photos", "photos");
  const count = el("p", { id: "e-count", class: "hint" });
  const form = el("form", { id: "entry-form", class: "card" },
    el("label", { class: "field" }, el("span", {}, t("kind")), kind),
    el("label", { class: "field" }, el("span", {}, t("building")), building),
    care.length ? el("label", { class: "field" }, el("span", {}, t("care_person")), person) : null,
    el("label", { class: "field" }, el("span", {}, t("people_count")), people),
    el("label", { class: "field" }, el("span", {}, t("result")), result),
    el("label", { class: "field" }, el("span", {}, t("note")), note),
    photos.node,
    el("button", { type: "submit", class: "btn primary", id: "e-submit" }, t("save_entry")),
    count);
  const showCount = async () => { count.textContent = t("entries_today", { n: await todayCount() }); };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!result.value.trim()) return toast(t("need_result"), true);
    await photos.busy();
    const media = photos.items();
    const body = {
      day: dayIn(new Date(), cityTz()),
      kind: kind.value,
      people_count: Number(people.value) || 0,
      result: result.value.trim(),
      note: note.value.trim() || null,
    };
    if (building.value) body.building_id = Number(building.value);
    const visited = person.value === "" ? null : care[Number(person.value)];
    if (visited) {
      body.person_ids = [visited.person_id];
      if (visited.household_id !== null && visited.household_id !== undefined) body.household_id = visited.household_id;
      if (!body.building_id && visited.building_id) body.building_id = visited.building_id;
    }
    if (media.length) body.media = media;
    try { // where it was recorded, when the phone knows
      const f = await Promise.race([gpsFix(), new Promise((_, no) => setTimeout(() => no(new Error("timeout")), 3000))]);
      Object.assign(body, { lon: f.lon, lat: f.lat, crs: "wgs84" });
    } catch {
      // no fix: the entry is attributed by its building or household, or the worker's grid
    }
    await submit({ kind: "entry", method: "POST", path: "/register/entries", body, media });
    toast(t("entry_queued"));
    result.value = "";
    note.value = "";
    person.value = "";
    photos.clear();
    showCount();
    return undefined;
  });
  root.replaceChildren(form);
  showCount();
}
