// The resident's satisfaction page: GET/POST /satisfaction/{token} (issue 14).
import { api, checked, choices, newKey, show, tokenFromPath, when } from "./common.js";

const $ = (id) => document.getElementById(id);

async function main() {
  const token = tokenFromPath(location.pathname);
  const msg = $("msg");
  const form = $("form");
  let info;
  try {
    info = await api("GET", `/satisfaction/${encodeURIComponent(token)}`);
  } catch (e) {
    show(msg, e.message, "err");
    return;
  }
  $("category").textContent = `${info.category_zh || info.category} ${info.category_en ? `(${info.category_en})` : ""}`;
  $("grid").textContent = info.grid_name || "—";
  $("reported").textContent = when(info.reported_at);
  $("resolved").textContent = when(info.resolved_at);
  $("incident").classList.remove("hidden");
  choices($("solved"), "solved", Object.entries(info.choices).map(([k, v]) => ({ value: k, label: `${v.zh} ${v.en}` })));
  choices($("score"), "score", [1, 2, 3, 4, 5].map((n) => ({ value: n, label: `${n}★` })));
  form.classList.remove("hidden");
  const key = newKey(); // one answer: a retry after a lost reply is not a second answer
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const solved = checked(form, "solved");
    const score = checked(form, "score");
    if (!solved || !score) {
      show(msg, "请选择是否解决和满意度。Please choose both answers.", "err");
      return;
    }
    $("send").disabled = true;
    try {
      await api("POST", `/satisfaction/${encodeURIComponent(token)}`, {
        solved,
        score: Number(score),
        comment: $("comment").value || null,
      }, key);
      form.classList.add("hidden");
      show(msg, "感谢您的评价！Thank you for your answer.", "ok");
    } catch (e) {
      $("send").disabled = false;
      show(msg, e.message, "err");
    }
  });
}

main();
