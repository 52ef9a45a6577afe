// The console's pages for points, pay and oversight (issue 14): 积分, 发放, 报表, 回访, 公平.
// Everything through the public admin API; points, yuan and shares are decimal strings and are
// shown exactly as the server gives them.  Files (CSV/XLSX) are fetched with the bearer token
// and saved from a blob, since a plain link cannot carry the Authorization header.
import { ApiError, describe } from "/static/common/api.js";
import { date, dateTime, h, toast } from "/static/common/fmt.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["points", "payouts", "reports", "followups", "fairplay"];
const FLAGS = { too_fast: "过快抢单", machine_regular: "节奏过于规律" };

let api = null;
const mounted = new Set();
const st = { agents: [], grids: new Map(), statement: null };

const pad = (n) => String(n).padStart(2, "0");

function thisMonth() {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
}

function lastMonth() {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 1);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
}

function quarterOf(month) {
  const [y, m] = month.split("-").map(Number);
  return `${y}-Q${Math.floor((m - 1) / 3) + 1}`;
}

function lastQuarter() {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 3);
  return quarterOf(`${d.getFullYear()}-${pad(d.getMonth() + 1)}`);
}

const classText = (c) => (c === 1 ? "一类" : c === 2 ? "二类" : "未定类");
const cell = (v, cls) => h("td", { class: cls || null }, v === null || v === undefined ? "" : String(v));
const num = (v) => cell(v, "num");
const th = (v, cls) => h("th", { class: cls || null }, v);
const gridText = (codes) => (codes || []).map((c) => st.grids.get(c) || c).join("、");
const agentText = (id) => {
  const a = st.agents.find((x) => x.id === id);
  return a ? `${a.name}（${id}）` : id === null || id === undefined ? "" : String(id);
};

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} 毫秒`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} 秒`;
  return `${Math.floor(ms / 60000)} 分 ${Math.round((ms % 60000) / 1000)} 秒`;
}

function fail(box, err) {
  box.replaceChildren(h("p", { class: "error", role: "alert" }, describe(err)));
}

// A report as a file: fetched with the token, saved from a blob under the server's name.
async function download(path, fallback) {
  try {
    const response = await api.call("GET", path, undefined, { raw: true });
    const disposition = response.headers.get("Content-Disposition") || "";
    const utf8 = /filename\*=UTF-8''([^;]+)/.exec(disposition);
    const plain = /filename="([^"]+)"/.exec(disposition);
    const name = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : fallback;
    const url = URL.createObjectURL(await response.blob());
    const a = h("a", { href: url, download: name, class: "hidden" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(`已下载 ${name}`);
  } catch (err) {
    toast(describe(err), "error");
  }
}

// One of month/quarter, by the kind selector of a report form.
function period(prefix) {
  const kind = $(`${prefix}-kind`).value;
  const value = $(`${prefix}-${kind}`).value.trim();
  return `${kind}=${encodeURIComponent(value)}`;
}

function periodPicker(prefix, load) {
  $(`${prefix}-month`).value = lastMonth();
  $(`${prefix}-quarter`).value = lastQuarter();
  $(`${prefix}-kind`).addEventListener("change", () => {
    const kind = $(`${prefix}-kind`).value;
    $(`${prefix}-month`).classList.toggle("hidden", kind !== "month");
    $(`${prefix}-quarter`).classList.toggle("hidden", kind !== "quarter");
  });
  $(`${prefix}-query`).addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
}

async function loadShared() {
  try {
    const [agents, grids] = await Promise.all([api.get("/v1/admin/agents"), api.get("/v1/admin/grids")]);
    st.agents = agents.agents;
    st.grids = new Map(grids.grids.map((g) => [g.code, g.name]));
    $("adjust-agent").replaceChildren(h("option", { value: "" }, "选择代办员…"),
      ...st.agents.map((a) => h("option", { value: String(a.id) }, `${a.name}（${a.id}）`)));
    $("fairplay-grid").replaceChildren(h("option", { value: "" }, "全部网格"),
      ...grids.grids.filter((g) => g.level === "village" || !grids.grids.some((c) => c.parent === g.code))
        .map((g) => h("option", { value: g.code }, g.name)));
  } catch (err) {
    toast(describe(err), "error");
  }
}

export function mountPoints(theApi) {
  api = theApi;
  const now = new Date();
  const quarters = [];
  for (let i = 0; i < 8; i += 1) {
    const d = new Date(now.getFullYear(), now.getMonth() - 3 * i, 1);
    quarters.push(quarterOf(`${d.getFullYear()}-${pad(d.getMonth() + 1)}`));
  }
  $("quarters").replaceChildren(...quarters.map((q) => h("option", { value: q })));
  $("points-month").value = lastMonth();
  $("adjust-month").value = thisMonth();
  $("payout-quarter").value = lastQuarter();
  $("followups-month").value = lastMonth();
  $("points-query").addEventListener("submit", (ev) => { ev.preventDefault(); loadPoints(); });
  $("payout-query").addEventListener("submit", (ev) => { ev.preventDefault(); loadPayout(); });
  $("followups-query").addEventListener("submit", (ev) => { ev.preventDefault(); loadFollowups(); });
  periodPicker("reports", loadReports);
  periodPicker("fairplay", loadFairplay);
  const month = () => encodeURIComponent($("points-month").value);
  $("points-csv").addEventListener("click", () => download(`/v1/admin/points?month=${month()}&format=csv`, "points.csv"));
  $("points-xlsx").addEventListener("click", () => download(`/v1/admin/points?month=${month()}&format=xlsx`, "points.xlsx"));
  const quarter = () => encodeURIComponent($("payout-quarter").value.trim());
  $("payout-csv").addEventListener("click", () => download(`/v1/admin/payouts?quarter=${quarter()}&format=csv`, "payout.csv"));
  $("payout-xlsx").addEventListener("click", () => download(`/v1/admin/payouts?quarter=${quarter()}&format=xlsx`, "payout.xlsx"));
  $("reports-csv").addEventListener("click", () => download(`/v1/admin/oversight/figures?${period("reports")}&by=${$("reports-by").value}&format=csv`, "figures.csv"));
  $("followups-csv").addEventListener("click", () => download(`/v1/admin/followups?month=${encodeURIComponent($("followups-month").value)}&format=csv`, "followups.csv"));
  $("adjust-form").addEventListener("submit", addAdjustment);
  loadShared();
}

// Called by the console's router when one of these views is shown.
export function showPointsView(view) {
  if (!VIEWS.includes(view) || !api) return;
  const current = document.querySelector('.side a[aria-current="page"]');
  if (current) current.scrollIntoView({ block: "nearest", inline: "nearest" }); // phones: the nav scrolls
  const first = !mounted.has(view);
  mounted.add(view);
  if (!first) return; // later loads are the operator's (查询), so a form is never reset
  ({ points: loadPoints, payouts: loadPayout, reports: loadReports, followups: loadFollowups, fairplay: loadFairplay })[view]();
}

// --- 积分 -------------------------------------------------------------------------------

async function loadPoints() {
  const month = $("points-month").value;
  if (!month) return;
  const table = $("points-table");
  try {
    const data = await api.get(`/v1/admin/points?month=${encodeURIComponent(month)}`);
    $("points-state").replaceChildren(`${data.month}，所属 ${data.quarter}：`,
      data.quarter_state === "approved" ? h("span", { class: "badge green" }, "本季度已审批（已冻结）") : h("span", { class: "badge amber" }, "本季度未审批"));
    table.tBodies[0].replaceChildren(...(data.agents.length ? data.agents.map((a) => h("tr", {
      dataset: { agentId: String(a.agent_id) },
      class: st.statement === a.agent_id ? "selected" : null,
      onclick: () => loadStatement(a.agent_id),
    }, cell(a.agent_id), cell(a.name), cell(gridText(a.grids)), num(a.orders), num(a.points), num(a.yuan),
    num(a.unsatisfied), num(a.unrated), num(a.adjustments))) : [h("tr", {}, h("td", { colspan: "9", class: "muted" }, "本月没有计分记录。"))]));
    table.tFoot.replaceChildren(h("tr", {}, h("td", { colspan: "3" }, "合计"), num(data.totals.orders), num(data.totals.points), num(data.totals.yuan), h("td", { colspan: "3" })));
    renderNeeds(data.needs_class);
    if (st.statement !== null) loadStatement(st.statement);
  } catch (err) {
    table.tBodies[0].replaceChildren(h("tr", {}, h("td", { colspan: "9", class: "error" }, describe(err))));
  }
}

function renderNeeds(needs) {
  const box = $("points-needs");
  if (!needs.length) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(h("div", { class: "card" },
    h("h3", {}, `待定类工单（${needs.length}）：办结时没有事项类别，定类后才计分`),
    h("table", { "aria-label": "待定类工单" },
      h("thead", {}, h("tr", {}, th("工单"), th("需求"), th("代办员"), th("网格"), th("办结时间"), th("定类"))),
      h("tbody", {}, needs.map((n) => h("tr", { dataset: { orderId: String(n.order_id) } },
        cell(`#${n.order_id}`), cell(n.item_name), cell(agentText(n.agent_id)), cell(gridText([n.grid])), cell(dateTime(n.closed_at)),
        h("td", {}, classifyForm(n))))))));
}

function classifyForm(n) {
  const select = h("select", { "aria-label": `工单 ${n.order_id} 的类别` },
    h("option", { value: "1" }, "一类（1.5 分）"), h("option", { value: "2" }, "二类（2 分）"));
  const reason = h("input", { type: "text", "aria-label": `工单 ${n.order_id} 定类原因`, placeholder: "原因（必填）", maxlength: "500" });
  const message = h("span", { class: "error small", role: "alert" });
  const form = h("form", { class: "call" }, select, reason, h("button", { type: "submit" }, "定类"), message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!reason.value.trim()) {
      message.textContent = "请填写原因";
      return;
    }
    try {
      const r = await api.post("/v1/admin/points/classify", { order_id: n.order_id, item_class: Number(select.value), reason: reason.value.trim() });
      toast(`#${n.order_id} 已定为${classText(r.item_class)}，计 ${r.points} 分（${r.month}${r.moved_from ? `，原属 ${r.moved_from}` : ""}）`);
      loadPoints();
    } catch (err) {
      message.textContent = describe(err);
    }
  });
  return form;
}

async function loadStatement(agentId) {
  st.statement = agentId;
  const month = $("points-month").value;
  const box = $("points-statement");
  for (const tr of $("points-table").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.agentId === String(agentId));
  const path = `/v1/admin/points?month=${encodeURIComponent(month)}&agent_id=${agentId}`;
  try {
    const s = await api.get(path);
    box.replaceChildren(h("article", { class: "card", "aria-label": "积分明细" },
      h("div", { class: "row" },
        h("h3", { class: "grow" }, `${s.agent.name}（${s.agent.agent_id}）${s.month} 积分明细`),
        h("button", { type: "button", onclick: () => download(`${path}&format=csv`, "statement.csv") }, "下载 CSV"),
        h("button", { type: "button", onclick: () => download(`${path}&format=xlsx`, "statement.xlsx") }, "下载 XLSX"),
        h("button", { type: "button", onclick: () => { st.statement = null; box.replaceChildren(); loadPoints(); } }, "关闭")),
      statementBody(s)));
    $("adjust-agent").value = String(agentId);
  } catch (err) {
    fail(box, err);
  }
}

// Shared with nothing else on purpose: the agent app has its own (phone) layout.
function statementBody(s) {
  return [
    h("p", {}, `工单 ${s.totals.orders} 件，积分 `, h("strong", {}, s.totals.points), `，金额 ${s.totals.yuan} 元`),
    h("table", { "aria-label": "工单积分" },
      h("thead", {}, h("tr", {}, th("工单"), th("事项"), th("类别"), th("评价"), th("办结时间"), th("积分", "num"), th("原属月份"))),
      h("tbody", {}, s.orders.length ? s.orders.map((o) => h("tr", { dataset: { orderId: String(o.order_id) } },
        cell(`#${o.order_id}`), cell(o.item_name || o.item || ""), cell(classText(o.item_class)), cell(o.rating_label || "未评价"),
        cell(dateTime(o.closed_at)), num(o.points), cell(o.moved_from || ""))) : h("tr", {}, h("td", { colspan: "7", class: "muted" }, "本月没有计分工单。")))),
    s.adjustments.length ? h("table", { "aria-label": "积分调整" },
      h("thead", {}, h("tr", {}, th("调整"), th("积分", "num"), th("原因"), th("操作人"), th("时间"), th("原属月份"))),
      h("tbody", {}, s.adjustments.map((a) => h("tr", {}, cell(`调整 ${a.id}`), num(a.points), cell(a.reason), cell(a.by), cell(dateTime(a.at)), cell(a.moved_from || ""))))) : null,
    s.needs_class.length ? h("p", { class: "small" }, `另有 ${s.needs_class.length} 件待定类，定类后计分。`) : null,
  ];
}

async function addAdjustment(ev) {
  ev.preventDefault();
  const message = $("adjust-message");
  message.textContent = "";
  const body = {
    agent_id: Number($("adjust-agent").value),
    month: $("adjust-month").value,
    points: $("adjust-points").value.trim(),
    reason: $("adjust-reason").value.trim(),
  };
  try {
    const r = await api.post("/v1/admin/adjustments", body);
    toast(`已记录调整 ${r.points} 分，计入 ${r.month}${r.moved_from ? `（原属 ${r.moved_from}，该季度已审批）` : ""}`);
    $("adjust-points").value = "";
    $("adjust-reason").value = "";
    loadPoints();
  } catch (err) {
    message.textContent = describe(err);
    const field = err instanceof ApiError && err.details.field;
    const input = field && $(`adjust-${field === "agent_id" ? "agent" : field}`);
    if (input) input.focus();
  }
}

// --- 发放 -------------------------------------------------------------------------------

async function loadPayout() {
  const quarter = $("payout-quarter").value.trim();
  const box = $("payout-state");
  const table = $("payout-table");
  try {
    const p = await api.get(`/v1/admin/payouts?quarter=${encodeURIComponent(quarter)}`);
    const townships = new Map(p.townships.map((t) => [t.township, t.name]));
    renderPayoutState(p);
    table.tHead.replaceChildren(h("tr", {}, th("编号"), th("姓名"), th("乡镇"), ...p.months.map((m) => th(`${m} 积分`, "num")), th("工单数", "num"), th("季度积分", "num"), th("金额(元)", "num")));
    const rows = [];
    const agentRow = (a) => h("tr", { dataset: { agentId: String(a.agent_id) } }, cell(a.agent_id), cell(a.name), cell(townships.get(a.township) || a.township),
      ...p.months.map((m) => num(a.months[m])), num(a.orders), num(a.points), num(a.yuan));
    for (const t of p.townships) {
      rows.push(...p.agents.filter((x) => x.township === t.township).map(agentRow));
      rows.push(h("tr", { class: "subtotal" }, h("td", { colspan: String(3 + p.months.length + 1) }, h("strong", {}, `乡镇小计 ${t.name || t.township || "（无乡镇）"}`)), num(t.points), num(t.yuan)));
    }
    rows.push(...p.agents.filter((x) => !townships.has(x.township)).map(agentRow)); // none expected: every agent has a subtotal
    table.tBodies[0].replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: String(6 + p.months.length), class: "muted" }, "本季度没有计分记录。"))]));
    table.tFoot.replaceChildren(h("tr", {}, h("td", { colspan: String(3 + p.months.length) }, "合计"), num(p.totals.orders), num(p.totals.points), num(p.totals.yuan)));
    $("payout-townships").tBodies[0].replaceChildren(...p.townships.map((t) => h("tr", {}, cell(t.name || t.township || "（无乡镇）"), num(t.agents), num(t.points), num(t.yuan))));
    $("payout-needs").textContent = p.needs_class.length ? `有 ${p.needs_class.length} 件工单待定类（见“积分”），定类前不计分。` : "";
  } catch (err) {
    fail(box, err);
    table.tHead.replaceChildren();
    table.tBodies[0].replaceChildren();
    table.tFoot.replaceChildren();
  }
}

function renderPayoutState(p) {
  const box = $("payout-state");
  if (p.state === "approved") {
    box.replaceChildren(h("p", {}, h("span", { class: "badge green" }, "已审批"),
      ` ${p.quarter} 于 ${date(p.approved_at)} ${dateTime(p.approved_at).split(" ")[1]} 由 ${p.approved_by} 审批，数据已冻结；之后的变动计入下一个未结期间。`));
    return;
  }
  const message = h("span", { class: "error small", role: "alert" });
  const approve = h("button", { class: "primary", type: "button" }, "审批本季度");
  approve.addEventListener("click", () => {
    const yes = h("button", { class: "primary", type: "button" }, "确认审批");
    const no = h("button", { type: "button" }, "取消");
    const confirm = h("div", { class: "confirm", role: "alertdialog", "aria-label": "确认审批" },
      h("span", {}, `审批后 ${p.quarter} 的发放数据将冻结，不再随工单或调整变动。确认审批？`), yes, no);
    no.addEventListener("click", () => renderPayoutState(p));
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api.post(`/v1/admin/payouts/${encodeURIComponent(p.quarter)}/approve`);
        toast(`${p.quarter} 已审批`);
        loadPayout();
      } catch (err) {
        const text = err instanceof ApiError && err.code === "quarter_not_over" ? "季度尚未结束，不能审批" : err instanceof ApiError && err.code === "already_approved" ? "本季度已审批" : describe(err);
        confirm.replaceChildren(h("span", { class: "error", role: "alert" }, text), no);
        no.textContent = "返回";
      }
    });
    box.replaceChildren(confirm);
  });
  box.replaceChildren(h("p", {}, h("span", { class: "badge amber" }, "未审批"), ` ${p.quarter} 的数据仍随工单和调整变动。季度结束后方可审批。`),
    h("div", { class: "row" }, approve, message));
}

// --- 报表 -------------------------------------------------------------------------------

async function loadReports() {
  const which = period("reports");
  const by = $("reports-by").value;
  const figures = $("figures-table");
  try {
    const [f, top, idle] = await Promise.all([
      api.get(`/v1/admin/oversight/figures?${which}&by=${by}`),
      api.get(`/v1/admin/oversight/top?${which}`),
      api.get("/v1/admin/oversight/inactive"),
    ]);
    const row = (name, g, cls) => h("tr", { class: cls || null }, cell(name), num(g.filed), num(g.claimed), num(g.claimed_in_time), num(g.widened),
      num(g.escalated), num(duration(g.median_claim_ms)), num(g.on_time), num(g.closed), num(g.rated), num(g.satisfaction), num(g.participation));
    figures.tBodies[0].replaceChildren(...(f.groups.length ? f.groups.map((g) => row(g.name || g[by] || "（未归属）", g)) : [h("tr", {}, h("td", { colspan: "12", class: "muted" }, "本期没有提交的工单。"))]));
    figures.tFoot.replaceChildren(row("全部", f.all));
    $("top-table").tBodies[0].replaceChildren(...(top.agents.length ? top.agents.map((a) => h("tr", {},
      num(a.rank), cell(a.name), cell(gridText(a.grids)), num(a.orders), num(a.points), num(a.unsatisfied))) : [h("tr", {}, h("td", { colspan: "6", class: "muted" }, "本期没有计分的代办员。"))]));
    $("inactive-days").textContent = String(idle.days);
    $("inactive-table").tBodies[0].replaceChildren(...(idle.agents.length ? idle.agents.map((a) => h("tr", {},
      cell(a.agent_id), cell(a.name), cell(gridText(a.grids)), cell(a.last_active_at ? date(a.last_active_at) : "从未办理"),
      num(a.idle_days === null ? "—" : a.idle_days))) : [h("tr", {}, h("td", { colspan: "5", class: "muted" }, "没有长期未办理的代办员。"))]));
  } catch (err) {
    figures.tBodies[0].replaceChildren(h("tr", {}, h("td", { colspan: "12", class: "error" }, describe(err))));
  }
}

// --- 回访 -------------------------------------------------------------------------------

async function loadFollowups() {
  const month = $("followups-month").value;
  const box = $("followups-sample");
  const body = $("followups-table").tBodies[0];
  try {
    // The seed goes up to 2^62: read it from the text, since a JS number would round it.
    const response = await api.call("GET", `/v1/admin/followups?month=${encodeURIComponent(month)}`, undefined, { raw: true });
    const text = await response.text();
    const list = JSON.parse(text);
    const seedMatch = /"seed"\s*:\s*(\d+)/.exec(text);
    const seed = seedMatch ? seedMatch[1] : String(list.seed);
    const flagged = list.orders.filter((o) => o.call && o.call.contradicts).length;
    box.replaceChildren(h("p", { class: "small" },
      `${list.month} 已于 ${dateTime(list.drawn_at)} 由 ${list.drawn_by} 抽样：从 ${list.candidates} 件中按 ${list.share} 抽取 ${list.orders.length} 件（种子 ${seed}，可复现）。`,
      flagged ? h("span", { class: "badge red" }, `${flagged} 件回访与评价不符`) : null));
    body.replaceChildren(...list.orders.map(callRow));
  } catch (err) {
    body.replaceChildren();
    if (err instanceof ApiError && err.code === "no_sample") box.replaceChildren(sampleForm(month));
    else fail(box, err);
  }
}

function sampleForm(month) {
  const share = h("input", { id: "sample-share", inputmode: "decimal", placeholder: "默认", class: "short" });
  const seed = h("input", { id: "sample-seed", inputmode: "numeric", placeholder: "随机", class: "short" });
  const message = h("span", { class: "error small", role: "alert" });
  const form = h("form", { class: "card" },
    h("p", {}, `${month} 尚未抽样。每月抽样一次，每位有办结工单的代办员至少抽一件。`),
    h("div", { class: "row" }, h("label", { for: "sample-share", class: "inline" }, "抽样比例"), share,
      h("label", { for: "sample-seed", class: "inline" }, "随机种子"), seed,
      h("button", { class: "primary", type: "submit" }, "抽取回访样本"), message));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    if (share.value.trim()) body.share = share.value.trim();
    const wanted = seed.value.trim();
    if (wanted && !/^\d{1,19}$/.test(wanted)) {
      message.textContent = "随机种子应为非负整数";
      return;
    }
    // Written by hand so a seed above 2^53 reaches the server exactly (a JS number would not).
    const json = JSON.stringify(body).replace(/}$/, wanted ? `${Object.keys(body).length ? "," : ""}"seed":${wanted}}` : "}");
    try {
      await api.call("POST", `/v1/admin/followups/${encodeURIComponent(month)}/sample`, json, { contentType: "application/json; charset=utf-8" });
      toast(`${month} 回访样本已抽取`);
      loadFollowups();
    } catch (err) {
      message.textContent = err instanceof ApiError && err.code === "month_not_over" ? "本月尚未结束，月底后才能抽样" : describe(err);
    }
  });
  return form;
}

function outcome(call) {
  if (!call) return "未回访";
  if (!call.reached) return `未接通（${dateTime(call.at)}）`;
  const said = call.satisfied === null ? "未表态" : call.satisfied ? "满意" : "不满意";
  return `已接通，${said}${call.comment ? `：${call.comment}` : ""}（${dateTime(call.at)}）`;
}

function callRow(o) {
  const contradicts = Boolean(o.call && o.call.contradicts);
  const reached = h("select", { "aria-label": `工单 ${o.order_id} 是否接通` }, h("option", { value: "yes" }, "已接通"), h("option", { value: "no" }, "未接通"));
  const satisfied = h("select", { "aria-label": `工单 ${o.order_id} 是否满意` }, h("option", { value: "yes" }, "满意"), h("option", { value: "no" }, "不满意"), h("option", { value: "" }, "未表态"));
  const comment = h("input", { type: "text", "aria-label": `工单 ${o.order_id} 回访备注`, placeholder: "备注", maxlength: "500" });
  const message = h("span", { class: "error small", role: "alert" });
  reached.addEventListener("change", () => { satisfied.disabled = reached.value === "no"; });
  const form = h("form", { class: "call" }, reached, satisfied, comment, h("button", { type: "submit" }, "记录"), message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const isReached = reached.value === "yes";
    const body = { order_id: o.order_id, reached: isReached, satisfied: isReached && satisfied.value ? satisfied.value === "yes" : null };
    if (comment.value.trim()) body.comment = comment.value.trim();
    try {
      const r = await api.post("/v1/admin/followups/calls", body);
      toast(r.contradicts ? `#${o.order_id} 回访与评价不符，已标记` : `#${o.order_id} 回访已记录`, r.contradicts ? "error" : "info");
      loadFollowups();
    } catch (err) {
      message.textContent = describe(err);
    }
  });
  return h("tr", { class: contradicts ? "contradicts" : null, dataset: { orderId: String(o.order_id) } },
    cell(`#${o.order_id}`), cell(o.applicant_name), cell(o.applicant_phone), cell(o.agent_name), cell(o.item_name || o.item || ""),
    cell(o.rating_label || "未评价"),
    h("td", {}, outcome(o.call), contradicts ? h("span", { class: "badge red" }, "与评价不符") : null),
    h("td", {}, form));
}

// --- 公平 -------------------------------------------------------------------------------

async function loadFairplay() {
  const grid = $("fairplay-grid").value;
  const body = $("fairplay-table").tBodies[0];
  try {
    const f = await api.get(`/v1/admin/fairplay?${period("fairplay")}${grid ? `&grid=${encodeURIComponent(grid)}` : ""}`);
    const t = f.thresholds;
    $("fairplay-thresholds").textContent = `全部时间取自服务器。反应时间 = 派单送达该连接到收到抢单。过快：低于 ${t.fast_ms} 毫秒；节奏过于规律：至少 ${t.regular_min_claims} 次计时抢单且变异系数低于 ${t.regular_cv}` +
      (t.min_reaction_ms ? `；低于 ${t.min_reaction_ms} 毫秒的抢单不予受理（被忽略）。` : "。");
    body.replaceChildren(...(f.agents.length ? f.agents.map((a) => h("tr", { class: a.flags.length ? "flagged" : null, dataset: { agentId: String(a.agent_id) } },
      cell(`${a.name}（${a.agent_id}）`), num(a.offers), num(a.claims), num(a.wins), num(a.ignored), num(a.fast_claims), num(a.untimed_claims),
      num(a.reaction ? duration(a.reaction.p50_ms) : ""), num(a.reaction ? duration(a.reaction.p90_ms) : ""), num(a.reaction ? duration(a.reaction.min_ms) : ""),
      h("td", {}, a.flags.map((x) => h("span", { class: "badge red" }, FLAGS[x] || x))))) : [h("tr", {}, h("td", { colspan: "11", class: "muted" }, "本期没有派单或抢单记录。"))]));
    $("fairplay-grids").replaceChildren(...f.grids.map((g) => h("div", { class: "card" },
      h("h3", {}, st.grids.get(g.grid) || g.grid),
      h("table", { "aria-label": `网格 ${g.grid} 公平表` },
        h("thead", {}, h("tr", {}, th("代办员"), th("收到派单", "num"), th("抢到", "num"), th("派单占比", "num"), th("抢到占比", "num"), th("比值", "num"))),
        h("tbody", {}, g.agents.map((a) => h("tr", {}, cell(agentText(a.agent_id)), num(a.offers), num(a.wins), num(a.offer_share), num(a.win_share), num(a.ratio))))))));
  } catch (err) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "11", class: "error" }, describe(err))));
  }
}
