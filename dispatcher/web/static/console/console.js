// The operators' console.  There is no operators' stream on the server, so the board is kept
// live by polling GET /v1/admin/orders every POLL_MS (one request per status); everything
// else reads and writes through the same admin endpoints as any other client.
import { Api, ApiError, describe, signOut, takeToken } from "/static/common/api.js";
import { indicator } from "/static/common/live.js";
import { HELD, OPEN, STATUS, date, dateTime, h, toast } from "/static/common/fmt.js";
import { mountPoints, showPointsView } from "/console/points.js";
import { deliveryLog, mountSms, showSmsView } from "/console/sms.js";

const KEY = "bangban.admin.token";
const POLL_MS = 2000;
const PAGE = 500;
const STATUSES = ["offered", "widened", "escalated", "claimed", "awaiting_materials", "accepted", "replied", "closed", "cancelled"];
const $ = (id) => document.getElementById(id);

let api = null;
const state = {
  orders: new Map(), // id -> order (all statuses polled)
  full: {}, // status -> true when that status had a full page (more exist)
  overdue: [],
  grids: [], // from GET /v1/admin/grids
  gridNames: new Map(),
  geometry: null,
  agents: [],
  online: null, // Set of agent ids connected now (GET /v1/admin/presence), once loaded
  items: [],
  filter: new Set(),
  view: "board",
  detail: null,
  ok: null,
};

function start() {
  const token = takeToken(KEY);
  $("token-go").addEventListener("click", () => {
    const t = $("token-input").value.trim();
    if (t) {
      localStorage.setItem(KEY, t);
      location.reload();
    }
  });
  if (!token) {
    indicator($("conn"), "offline");
    $("signin").classList.remove("hidden");
    return;
  }
  api = new Api(token);
  $("shell").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  $("signout").addEventListener("click", () => {
    signOut(KEY);
    location.replace("/console/");
  });
  window.addEventListener("hashchange", route);
  $("grid-filter").addEventListener("change", renderBoard);
  $("id-filter").addEventListener("input", renderBoard);
  $("item-new").addEventListener("click", () => editItem(null));
  $("show-retired").addEventListener("change", loadCatalog);
  $("grid-import").addEventListener("submit", importGrids);
  $("roster-import").addEventListener("submit", importRoster);
  mountPoints(api);
  mountSms(api);
  route();
  loadGrids();
  loadAgents();
  poll();
}

function route() {
  const view = (location.hash || "#board").slice(1).split("/")[0];
  state.view = $(`view-${view}`) ? view : "board";
  for (const section of document.querySelectorAll(".view")) section.classList.toggle("hidden", section.id !== `view-${state.view}`);
  for (const a of document.querySelectorAll(".side a")) {
    if (a.dataset.view === state.view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (state.view === "map") renderMap();
  if (state.view === "catalog") loadCatalog();
  if (state.view === "agents") loadPresence();
  showPointsView(state.view);
  showSmsView(state.view);
}

// --- polling ----------------------------------------------------------------------------

async function poll() {
  try {
    const lists = await Promise.all(STATUSES.map((s) => api.get(`/v1/admin/orders?status=${s}&limit=${PAGE}`)));
    const overdue = await api.get(`/v1/admin/orders?overdue=true&limit=${PAGE}`);
    const orders = new Map();
    lists.forEach((list, i) => {
      state.full[STATUSES[i]] = list.orders.length >= PAGE;
      for (const o of list.orders) orders.set(o.id, o);
    });
    state.orders = orders;
    state.overdue = overdue.orders;
    if (state.view === "agents") await loadPresence(false);
    setOk(true);
    renderAll();
  } catch (err) {
    setOk(false, err);
  }
  setTimeout(poll, POLL_MS);
}

function setOk(ok, err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut(KEY);
    $("shell").classList.add("hidden");
    $("signin").classList.remove("hidden");
    $("signin-error").textContent = "管理令牌无效，请重新登录。";
    return;
  }
  indicator($("conn"), ok ? "connected" : "reconnecting");
  if (ok) $("updated").textContent = `更新于 ${dateTime(Date.now()).split(" ")[1]}:${String(new Date().getSeconds()).padStart(2, "0")}`;
}

function renderAll() {
  renderBoard();
  renderEscalated();
  renderOverdue();
  if (state.view === "map") renderMap();
  if (state.view === "agents") renderAgents();
  if (state.detail) refreshDetail();
}

// --- board ------------------------------------------------------------------------------

function gridName(code) {
  return state.gridNames.get(code) || code;
}

function agentName(id) {
  if (!id) return "";
  const a = state.agents.find((x) => x.id === id);
  return a ? `${a.name}（${id}）` : String(id);
}

function renderBoard() {
  const counts = {};
  for (const o of state.orders.values()) counts[o.status] = (counts[o.status] || 0) + 1;
  $("chips").replaceChildren(
    h("button", { type: "button", "aria-pressed": String(state.filter.size === 0), onclick: () => { state.filter.clear(); renderBoard(); } }, `全部 ${state.orders.size}`),
    ...STATUSES.map((s) => h("button", {
      type: "button",
      dataset: { status: s },
      "aria-pressed": String(state.filter.has(s)),
      onclick: () => {
        if (state.filter.has(s)) state.filter.delete(s);
        else state.filter.add(s);
        renderBoard();
      },
    }, `${STATUS[s]} ${counts[s] || 0}${state.full[s] ? "+" : ""}`)),
  );
  const grid = $("grid-filter").value;
  const wanted = $("id-filter").value.trim();
  const rows = [...state.orders.values()]
    .filter((o) => !state.filter.size || state.filter.has(o.status))
    .filter((o) => !grid || o.grid === grid)
    .filter((o) => !wanted || String(o.id).startsWith(wanted))
    .sort((a, b) => b.id - a.id);
  const shown = rows.slice(0, 300);
  // Rebuilt only when something shown changed, so a click is never lost to a redraw.
  const signature = shown.map((o) => `${o.id}.${o.version}.${o.overdue}`).join() + `|${state.agents.length}|${state.gridNames.size}`;
  if (signature !== state.boardShown) {
    state.boardShown = signature;
    $("board-table").tBodies[0].replaceChildren(...shown.map(orderRow));
  }
  $("board-more").textContent = rows.length > shown.length ? `只显示最新 ${shown.length} 条，共 ${rows.length} 条；请用筛选缩小范围。` : "";
  $("n-escalated").textContent = String(counts.escalated || 0);
  $("n-overdue").textContent = String(state.overdue.length);
}

function deadline(o) {
  if (o.status === "awaiting_materials" && o.supply_by) return `补件 ${date(o.supply_by)}`;
  if (o.due_at) return date(o.due_at);
  if (o.status === "escalated") return "待指派";
  return "";
}

function orderRow(o) {
  return h("tr", { class: o.overdue ? "overdue" : null, dataset: { orderId: String(o.id) }, onclick: () => openDetail(o.id) },
    h("td", {}, `#${o.id}`),
    h("td", {}, o.item_name || o.text || ""),
    h("td", {}, gridName(o.grid)),
    h("td", {}, STATUS[o.status] || o.status),
    h("td", {}, dateTime(o.created_at)),
    h("td", {}, agentName(o.claimed_by)),
    h("td", {}, o.overdue ? `已超期 ${deadline(o)}` : deadline(o)));
}

// --- escalated and overdue --------------------------------------------------------------

function agentSelect(order) {
  const local = state.agents.filter((a) => a.active && a.grids.includes(order.grid));
  const others = state.agents.filter((a) => a.active && !a.grids.includes(order.grid));
  const option = (a) => h("option", { value: String(a.id), disabled: a.id === order.claimed_by }, `${a.name}（${a.id}，在办 ${heldBy(a.id)}）`);
  return h("select", { name: "agent", "aria-label": "指派给" },
    h("option", { value: "" }, "选择代办员…"),
    local.length ? h("optgroup", { label: "本网格" }, local.map(option)) : null,
    others.length ? h("optgroup", { label: "其他网格" }, others.map(option)) : null);
}

function heldBy(agentId) {
  let n = 0;
  for (const o of state.orders.values()) if (o.claimed_by === agentId && HELD.includes(o.status)) n += 1;
  return n;
}

function assignForm(order, action) {
  const select = agentSelect(order);
  const reason = h("input", { name: "reason", placeholder: "原因（选填）", "aria-label": "原因" });
  const message = h("span", { class: "error small", role: "alert" });
  const button = h("button", { class: "primary", type: "submit" }, action === "assign" ? "指派" : "改派");
  const form = h("form", { class: "assign" }, select, reason, button, message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!select.value) {
      message.textContent = "请选择代办员";
      return;
    }
    button.disabled = true;
    const body = { agent_id: Number(select.value), version: order.version };
    if (reason.value.trim()) body.reason = reason.value.trim();
    try {
      const answer = await api.post(`/v1/orders/${order.id}/${action}`, body);
      state.orders.set(answer.id, answer);
      toast(`#${order.id} 已${action === "assign" ? "指派" : "改派"}给 ${agentName(answer.claimed_by)}`);
      renderAll();
    } catch (err) {
      message.textContent = describe(err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function renderEscalated() {
  const list = $("escalated-list");
  const active = document.activeElement;
  if (list.contains(active) && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName)) return; // being filled in
  const orders = [...state.orders.values()].filter((o) => o.status === "escalated").sort((a, b) => a.id - b.id);
  const signature = orders.map((o) => `${o.id}.${o.version}`).join() + `|${state.agents.length}|${state.gridNames.size}`;
  if (signature === state.escalatedShown) return; // keep what is being chosen
  state.escalatedShown = signature;
  list.replaceChildren(...(orders.length ? orders.map((o) => h("article", { class: "card", dataset: { orderId: String(o.id) }, "aria-label": `待指派工单 ${o.id}` },
    h("div", { class: "row" }, h("strong", { class: "grow" }, `#${o.id} ${o.item_name || "未分类事项"}`), h("span", { class: "badge red" }, "待指派")),
    h("p", {}, o.text || ""),
    h("p", { class: "small muted" }, `${gridName(o.grid)} · 提交于 ${dateTime(o.created_at)}`),
    assignForm(o, "assign"))) : [h("p", { class: "muted" }, "没有待指派的工单。")]));
}

function renderOverdue() {
  $("overdue-table").tBodies[0].replaceChildren(...state.overdue.map((o) => h("tr", { class: "overdue", onclick: () => openDetail(o.id) },
    h("td", {}, `#${o.id}`), h("td", {}, o.item_name || o.text || ""), h("td", {}, gridName(o.grid)),
    h("td", {}, STATUS[o.status]), h("td", {}, agentName(o.claimed_by)), h("td", {}, deadline(o)))));
}

// --- detail -----------------------------------------------------------------------------

async function openDetail(id) {
  state.detail = id;
  state.detailShown = null;
  $("detail").classList.remove("hidden");
  await refreshDetail();
}

async function refreshDetail() {
  const id = state.detail;
  const panel = $("detail");
  if (panel.contains(document.activeElement) && document.activeElement.tagName !== "BUTTON") return;
  try {
    const [o, trail, texts] = await Promise.all([api.get(`/v1/orders/${id}`), api.get(`/v1/orders/${id}/events`), api.get(`/v1/admin/orders/${id}/sms`)]);
    if (state.detail !== id) return;
    const signature = `${id}.${o.version}.${trail.events.length}.${o.overdue}|${texts.texts.map((m) => m.status).join()}`;
    if (signature === state.detailShown) return; // unchanged: keep the forms as they are
    state.detailShown = signature;
    const rows = [
      ["状态", STATUS[o.status] || o.status],
      ["事项", o.item_name || "（未分类）"],
      ["需求", o.text || ""],
      ["网格", gridName(o.grid)],
      ["派单范围", o.reach],
      ["申请人", o.applicant ? `${o.applicant.name || ""} ${o.applicant.phone || ""}` : ""],
      ["代办员", agentName(o.claimed_by)],
      ["短信代码", texts.short_code || ""],
      ["提交", dateTime(o.created_at)],
      ["期限", deadline(o) + (o.overdue ? "（已超期）" : "")],
      ["缺件", (o.missing || []).join("、")],
      ["定位", o.routing ? `${o.routing.method || ""} ${o.routing.detail || ""}` : ""],
    ];
    const actions = [];
    if (o.status === "escalated") actions.push(assignForm(o, "assign"));
    if (["claimed", "accepted", "awaiting_materials"].includes(o.status)) actions.push(assignForm(o, "reassign"));
    if (OPEN.includes(o.status)) actions.push(cancelForm(o));
    panel.replaceChildren(
      h("div", { class: "row" }, h("h2", { class: "grow" }, `工单 #${o.id}`), h("button", { type: "button", onclick: closeDetail }, "关闭")),
      h("dl", {}, rows.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      actions.length ? h("div", {}, h("h3", {}, "操作"), actions) : null,
      h("h3", {}, "办理记录"),
      h("ol", { class: "trail" }, trail.events.map((e) => h("li", {},
        h("div", {}, e.label), h("div", { class: "small muted" }, `${dateTime(e.at)} · ${e.actor || ""}`),
        Object.keys(e.details || {}).length ? h("div", { class: "small" }, summarize(e.details)) : null))),
      h("h3", {}, "短信记录"),
      deliveryLog(texts),
    );
  } catch (err) {
    panel.replaceChildren(h("p", { class: "error" }, describe(err)), h("button", { type: "button", onclick: closeDetail }, "关闭"));
  }
}

function summarize(details) {
  return Object.entries(details)
    .filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)).join("、") : typeof v === "object" ? JSON.stringify(v) : v}`)
    .join("；");
}

function cancelForm(o) {
  const reason = h("input", { name: "reason", placeholder: "取消原因（必填）", "aria-label": "取消原因" });
  const message = h("span", { class: "error small", role: "alert" });
  const form = h("form", { class: "assign" }, reason, h("button", { type: "submit" }, "取消工单"), message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.post(`/v1/orders/${o.id}/cancel`, { reason: reason.value.trim(), version: o.version });
      toast(`#${o.id} 已取消`);
      refreshDetail();
    } catch (err) {
      message.textContent = describe(err);
    }
  });
  return form;
}

function closeDetail() {
  state.detail = null;
  $("detail").classList.add("hidden");
}

// --- grids, agents, map -----------------------------------------------------------------

async function loadGrids() {
  try {
    const data = await api.get("/v1/admin/grids?geometry=true");
    state.grids = data.grids;
    state.gridNames = new Map(data.grids.map((g) => [g.code, g.name]));
    state.geometry = null;
    const select = $("grid-filter");
    const current = select.value;
    select.replaceChildren(h("option", { value: "" }, "全部网格"),
      ...data.grids.filter((g) => !data.grids.some((c) => c.parent === g.code)).map((g) => h("option", { value: g.code }, g.name)));
    select.value = current;
    renderAll();
  } catch (err) {
    toast(describe(err), "error");
  }
}

async function loadAgents() {
  try {
    state.agents = (await api.get("/v1/admin/agents")).agents;
    renderAll();
  } catch (err) {
    toast(describe(err), "error");
  }
}

async function loadPresence(render = true) {
  try {
    state.online = new Set((await api.get("/v1/admin/presence")).agents.map((a) => a.agent_id));
  } catch (err) {
    state.online = null;
    toast(describe(err), "error");
  }
  if (render) renderAgents();
}

function online(a) {
  if (!state.online) return h("td", {}, "");
  return state.online.has(a.id) ? h("td", {}, h("span", { class: "badge green" }, "在线")) : h("td", { class: "muted" }, "离线");
}

function renderAgents() {
  const byGrid = new Map();
  for (const a of state.agents) for (const g of a.grids) {
    if (!byGrid.has(g)) byGrid.set(g, []);
    byGrid.get(g).push(a);
  }
  const groups = [...byGrid.entries()].sort(([a], [b]) => a.localeCompare(b));
  const n = state.online ? state.agents.filter((a) => state.online.has(a.id)).length : null;
  $("agents-online").textContent = n === null ? "" : `现在在线 ${n} 人（连到任一服务进程）。不在线的代办员收到派单短信。`;
  $("agents-list").replaceChildren(...(groups.length ? groups.map(([g, agents]) => h("div", { class: "grid-group card" },
    h("h3", {}, `${gridName(g)}（${agents.length} 人）`),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "编号"), h("th", {}, "姓名"), h("th", {}, "手机"), h("th", {}, "在办"), h("th", {}, "状态"), h("th", {}, "在线"))),
      h("tbody", {}, agents.map((a) => h("tr", {}, h("td", {}, String(a.id)), h("td", {}, a.name), h("td", {}, a.phone),
        h("td", {}, String(heldBy(a.id))), h("td", {}, a.active ? "在册" : "停用"), online(a))))))) : [h("p", { class: "muted" }, "还没有代办员，请在“导入”中导入名册。")]));
}

const SHADES = ["#f1f1f1", "#ffe0b2", "#ffb74d", "#f57c00", "#c62828"];

function shade(n) {
  if (!n) return SHADES[0];
  if (n === 1) return SHADES[1];
  if (n <= 3) return SHADES[2];
  if (n <= 6) return SHADES[3];
  return SHADES[4];
}

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

function renderMap() {
  const shapes = state.grids.filter((g) => g.geometry && !state.grids.some((c) => c.parent === g.code && c.geometry));
  const box = $("map");
  if (!shapes.length) {
    box.replaceChildren(h("p", { class: "muted" }, "没有带边界的网格。请在“导入”中导入 GeoJSON。"));
    return;
  }
  const open = new Map();
  for (const o of state.orders.values()) if (OPEN.includes(o.status)) open.set(o.grid, (open.get(o.grid) || 0) + 1);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const g of shapes) for (const poly of rings(g.geometry)) for (const [x, y] of poly[0]) {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const k = Math.cos(((minY + maxY) / 2) * Math.PI / 180); // equirectangular, true at mid latitude
  const width = 1000;
  const scale = width / ((maxX - minX) * k || 1);
  const height = Math.max(100, Math.round((maxY - minY) * scale));
  const px = ([x, y]) => `${((x - minX) * k * scale).toFixed(1)},${((maxY - y) * scale).toFixed(1)}`;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "网格地图");
  for (const g of shapes) {
    const d = rings(g.geometry).map((poly) => poly.map((ring) => "M" + ring.map(px).join("L") + "Z").join("")).join("");
    const path = document.createElementNS(ns, "path");
    const n = open.get(g.code) || 0;
    path.setAttribute("d", d);
    path.setAttribute("fill", shade(n));
    path.setAttribute("fill-rule", "evenodd");
    path.dataset.grid = g.code;
    const title = document.createElementNS(ns, "title");
    title.textContent = `${g.name}：未办结 ${n} 件`;
    path.append(title);
    path.addEventListener("click", () => {
      $("grid-filter").value = g.code;
      location.hash = "#board";
      renderBoard();
    });
    svg.append(path);
  }
  box.replaceChildren(svg);
  $("map-legend").replaceChildren(...[["0", 0], ["1", 1], ["2–3", 2], ["4–6", 4], ["7+", 7]].map(([label, n]) => h("span", {}, h("i", { style: null, dataset: { n: String(n) } }), label)));
  for (const i of $("map-legend").querySelectorAll("i")) i.style.background = shade(Number(i.dataset.n));
}

// --- catalogue --------------------------------------------------------------------------

async function loadCatalog() {
  try {
    const all = $("show-retired").checked ? "?all=true" : "";
    state.items = (await api.get(`/v1/admin/catalog${all}`)).items;
    $("catalog-table").tBodies[0].replaceChildren(...state.items.map((i) => h("tr", { onclick: () => editItem(i) },
      h("td", {}, i.code), h("td", {}, i.name), h("td", {}, i.category), h("td", {}, i.item_class === 1 ? "一类" : "二类"),
      h("td", {}, `${i.time_limit_days} 日`), h("td", {}, i.retired ? "已停用" : "在用"))));
  } catch (err) {
    toast(describe(err), "error");
  }
}

const ITEM_FIELDS = [
  ["code", "编码（如 HJ-001）", "input"],
  ["name", "名称", "input"],
  ["category", "类别", "input"],
  ["item_class", "分类（1 一类 / 2 二类）", "class"],
  ["eligible", "适用对象", "textarea"],
  ["materials", "所需材料（每行一项）", "lines"],
  ["steps", "办理步骤（每行一步）", "lines"],
  ["time_limit_days", "办理时限（工作日）", "number"],
  ["fee", "收费", "input"],
  ["level", "办理层级", "level"],
];

function editItem(item) {
  const form = $("item-form");
  const controls = {};
  const fields = ITEM_FIELDS.map(([name, label, kind]) => {
    let input;
    const value = item ? item[name] : "";
    if (kind === "textarea" || kind === "lines") input = h("textarea", { name }, kind === "lines" ? (value || []).join("\n") : value);
    else if (kind === "class") input = h("select", { name }, h("option", { value: "1", selected: value === 1 }, "一类事项"), h("option", { value: "2", selected: value === 2 }, "二类事项"));
    else if (kind === "level") input = h("select", { name }, ...[["village", "村级可办"], ["township", "乡镇办理"], ["county", "县级办理"]].map(([v, l]) => h("option", { value: v, selected: value === v }, l)));
    else input = h("input", { name, type: kind === "number" ? "number" : "text", value: value === null || value === undefined ? "" : String(value), readonly: name === "code" && item ? true : null });
    input.id = `item-${name}`;
    controls[name] = [input, kind];
    return h("div", {}, h("label", { for: input.id }, label), input);
  });
  const message = h("p", { class: "error small", role: "alert" });
  const buttons = h("div", { class: "row" }, h("button", { class: "primary", type: "submit" }, item ? "保存" : "新增"),
    item && !item.retired ? h("button", { type: "button", onclick: () => retire(item, message) }, "停用") : null,
    h("button", { type: "button", onclick: () => form.classList.add("hidden") }, "关闭"));
  form.replaceChildren(h("h3", {}, item ? `编辑 ${item.code}` : "新增事项"), ...fields, message, buttons);
  form.classList.remove("hidden");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [name, [input, kind]] of Object.entries(controls)) {
      if (kind === "lines") body[name] = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
      else if (kind === "class" || kind === "number") body[name] = Number(input.value);
      else body[name] = input.value.trim();
    }
    try {
      if (item) await api.call("PUT", `/v1/admin/catalog/${encodeURIComponent(item.code)}`, { ...body, retired: item.retired });
      else await api.post("/v1/admin/catalog", body);
      toast(`事项 ${body.code} 已保存`);
      form.classList.add("hidden");
      loadCatalog();
    } catch (err) {
      message.textContent = describe(err);
      const bad = err instanceof ApiError && err.details.field ? controls[err.details.field.split("[")[0]] : null;
      if (bad) bad[0].focus();
    }
  };
}

async function retire(item, message) {
  try {
    await api.post(`/v1/admin/catalog/${encodeURIComponent(item.code)}/retire`, {});
    toast(`事项 ${item.code} 已停用`);
    $("item-form").classList.add("hidden");
    loadCatalog();
  } catch (err) {
    message.textContent = describe(err);
  }
}

// --- imports ----------------------------------------------------------------------------

async function upload(input, path, contentType) {
  const file = input.files[0];
  if (!file) throw new Error("请先选择文件");
  return api.call("POST", path, await file.text(), { contentType });
}

function problemTable(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c === null || c === undefined ? "" : String(c)))))));
}

async function importGrids(ev) {
  ev.preventDefault();
  const report = $("grid-report");
  report.replaceChildren(h("p", { class: "muted" }, "导入中…"));
  try {
    const summary = await upload($("grid-file"), "/v1/admin/grids/import?source=console", "application/geo+json");
    report.replaceChildren(h("p", { class: "ok" }, `已导入：${summary.grids ?? ""} 个网格（第 ${summary.generation ?? "?"} 代）`),
      h("pre", { class: "small" }, JSON.stringify(summary, null, 1)));
    loadGrids();
  } catch (err) {
    const problems = (err instanceof ApiError && err.details.problems) || [];
    report.replaceChildren(h("p", { class: "error" }, describe(err)),
      problems.length ? problemTable(["要素序号", "编码", "问题", "说明"], problems.map((p) => [p.index, p.code, p.problem, p.message])) : null);
  }
}

async function importRoster(ev) {
  ev.preventDefault();
  const report = $("roster-report");
  report.replaceChildren(h("p", { class: "muted" }, "导入中…"));
  try {
    const data = await upload($("roster-file"), "/v1/admin/agents/import", "text/csv");
    const base = `${location.origin}/app/#token=`;
    report.replaceChildren(h("p", { class: "ok" }, `已导入 ${data.agents.length} 名代办员。登录链接只显示这一次，请妥善发给本人：`),
      problemTable(["编号", "姓名", "网格", "登录链接"], data.agents.map((a) => [a.id, a.name, a.grids.join(";"), base + a.token])));
    loadAgents();
  } catch (err) {
    const d = (err instanceof ApiError && err.details) || {};
    const problems = d.problems || [];
    report.replaceChildren(h("p", { class: "error" }, describe(err)),
      problems.length ? problemTable(["行", "说明"], problems.map((p) => [p.line, p.message])) : null,
      d.codes ? h("p", { class: "small" }, `不存在的网格：${d.codes.join("、")}`) : null);
  }
}

start();
