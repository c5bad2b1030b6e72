// The residents' evaluation page: GET/POST /evaluations/{token} (issue 14).
import { api, checked, choices, newKey, show, tokenFromPath } from "./common.js";

const $ = (id) => document.getElementById(id);

async function main() {
  const token = tokenFromPath(location.pathname);
  const msg = $("msg");
  const form = $("form");
  let round;
  try {
    round = await api("GET", `/evaluations/${encodeURIComponent(token)}`);
  } catch (e) {
    show(msg, e.message, "err");
    return;
  }
  $("grid").textContent = round.grid_name || round.grid_code;
  $("label").textContent = round.label;
  $("round").classList.remove("hidden");
  if (!round.open) {
    show(msg, "本轮测评不在开放时间内。This round is not open.", "err");
    return;
  }
  for (const [code, names] of Object.entries(round.criteria)) {
    const fs = document.createElement("fieldset");
    const lg = document.createElement("legend");
    lg.textContent = `${names.zh} `;
    const en = document.createElement("span");
    en.className = "en";
    en.textContent = names.en;
    lg.append(en);
    const box = document.createElement("div");
    box.className = "choices stars";
    choices(box, code, [1, 2, 3, 4, 5].map((n) => ({ value: n, label: `${n}★` })));
    fs.append(lg, box);
    $("criteria").append(fs);
  }
  form.classList.remove("hidden");
  const key = newKey(); // one answer: a retry after a lost reply is not a second answer
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scores = {};
    for (const code of Object.keys(round.criteria)) {
      const v = checked(form, code);
      if (!v) {
        show(msg, `请为“${round.criteria[code].zh}”打分。Please rate every point.`, "err");
        return;
      }
      scores[code] = Number(v);
    }
    const household = $("household").value.trim();
    const phone = $("phone").value.trim();
    if (!household && !phone) {
      show(msg, "请填写户号或手机号。Household reference or phone, please.", "err");
      return;
    }
    $("send").disabled = true;
    try {
      await api("POST", `/evaluations/${encodeURIComponent(token)}`, {
        household_ref: household || null,
        phone: household ? null : phone,
        scores,
        comment: $("comment").value || null,
      }, key);
      form.classList.add("hidden");
      show(msg, "感谢您的参与！Thank you.", "ok");
    } catch (e) {
      $("send").disabled = false;
      show(msg, e.message, "err");
    }
  });
}

main();
