// 我的积分: the agent's own monthly statement (GET /v1/agent/points?month=), as the county
// computes it.  Points and yuan are decimal strings from the server, shown as given.
import { describe } from "/static/common/api.js";
import { dateTime, h } from "/static/common/fmt.js";

const $ = (id) => document.getElementById(id);
let api = null;

export function mountPoints(theApi) {
  api = theApi;
  const d = new Date();
  $("points-month").value = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
  $("points-query").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadPoints();
  });
}

const classText = (c) => (c === 1 ? "一类" : c === 2 ? "二类" : "未定类");

export async function loadPoints() {
  const month = $("points-month").value;
  const box = $("points-body");
  if (!month || !api) return;
  box.replaceChildren(h("p", { class: "muted" }, "加载中…"));
  try {
    const s = await api.get(`/v1/agent/points?month=${encodeURIComponent(month)}`);
    const parts = [
      h("div", { class: "pts-total", "aria-label": "本月合计" },
        h("div", {}, h("strong", {}, String(s.totals.orders)), "计分工单"),
        h("div", {}, h("strong", {}, s.totals.points), "积分"),
        h("div", {}, h("strong", {}, s.totals.yuan), "金额（元）")),
      h("p", { class: "small muted" }, `${s.month}，${s.quarter_state === "approved" ? "本季度已审批发放，数据已冻结" : "本季度尚未审批，数据可能随评价和调整变动"}。`),
      s.orders.length ? null : h("p", { class: "muted" }, "本月没有计分工单。"),
      ...s.orders.map((o) => h("article", { class: "card", dataset: { orderId: String(o.order_id) } },
        h("div", { class: "pts-line" },
          h("strong", { class: "grow" }, o.item_name || o.item || "事项"),
          h("span", { class: `pts${o.points === "0" ? " zero" : ""}` }, `${o.points} 分`)),
        h("div", { class: "small muted" }, `#${o.order_id} · ${classText(o.item_class)} · ${o.rating_label || "未评价"} · 办结 ${dateTime(o.closed_at)}`,
          o.moved_from ? ` · 原属 ${o.moved_from}` : ""))),
      ...s.adjustments.map((a) => h("article", { class: "card", dataset: { adjustment: String(a.id) } },
        h("div", { class: "pts-line" }, h("strong", { class: "grow" }, `积分调整：${a.reason}`), h("span", { class: "pts" }, `${a.points} 分`)),
        h("div", { class: "small muted" }, `${dateTime(a.at)}${a.moved_from ? ` · 原属 ${a.moved_from}` : ""}`))),
      s.needs_class.length ? h("p", { class: "small" }, `另有 ${s.needs_class.length} 件工单待工作人员确定事项类别，确定后计分。`) : null,
    ];
    box.replaceChildren(...parts.filter(Boolean));
  } catch (err) {
    box.replaceChildren(h("p", { class: "error", role: "alert" }, describe(err)));
  }
}
