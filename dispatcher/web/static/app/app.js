// The agents' app: live offers over the agent websocket (JSON frames), the grab, and the
// orders the agent holds with their workflow actions over the HTTP API.
import { Api, ApiError, describe, signOut, takeToken } from "/static/common/api.js";
import { Live, indicator } from "/static/common/live.js";
import {
  DESKS, HELD, STATUS, ago, classLabel, date, dateTime, h, points, toast,
} from "/static/common/fmt.js";
import { loadPoints, mountPoints } from "/app/points.js";

const KEY = "bangban.agent.token";
const SNAPSHOT_MS = 2000; // the snapshot arrives in one burst right after welcome
const $ = (id) => document.getElementById(id);

const state = {
  me: null, // welcome frame
  held: 0,
  limit: 5,
  offers: new Map(), // order id -> {order, el, claim: {rid, result}, withdrawn}
  mine: new Map(), // order id -> order
  places: new Map(), // grid code -> place
  guides: new Map(), // item code -> item
  audio: null,
  openForms: new Set(), // "order id:action" of the action forms the agent has open
};

const CLAIM_TEXT = {
  won: "已抢到",
  taken: "已被抢",
  limit_reached: "已达上限",
  not_offered: "已不再派给您",
  unknown_order: "工单不存在",
  unavailable: "请重试",
  timeout: "请重试",
};

let api = null;
let live = null;

function start() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }
  const token = takeToken(KEY);
  $("token-go").addEventListener("click", () => {
    const t = $("token-input").value.trim();
    if (!t) return;
    localStorage.setItem(KEY, t);
    location.reload();
  });
  $("signout").addEventListener("click", () => {
    signOut(KEY);
    if (live) live.stop();
    location.replace("/app/");
  });
  $("tab-offers").addEventListener("click", () => showTab("offers"));
  $("tab-mine").addEventListener("click", () => showTab("mine"));
  $("tab-points").addEventListener("click", () => {
    showTab("points");
    loadPoints();
  });
  $("notify").addEventListener("click", askNotifications);
  if (!token) {
    indicator($("conn"), "offline");
    $("signin").classList.remove("hidden");
    return;
  }
  api = new Api(token);
  $("shell").classList.remove("hidden");
  mountPoints(api);
  if ("Notification" in window && Notification.permission === "default") $("notify").classList.remove("hidden");
  document.addEventListener("click", unlockAudio, { once: true });
  live = new Live("/v1/agent/ws", token, {
    onFrame,
    onState: (s) => {
      indicator($("conn"), s);
      if (s === "denied") denied();
    },
  });
  live.start();
  loadMine(); // offline, the service worker answers with the last list it saw
  setInterval(refreshTimes, 30000);
}

function denied() {
  signOut(KEY);
  indicator($("conn"), "denied");
  $("shell").classList.add("hidden");
  $("signin").classList.remove("hidden");
  $("signin-error").textContent = "登录码无效或已停用，请向管理员索取新的登录链接。";
}

function showTab(name) {
  for (const tab of ["offers", "mine", "points"]) {
    $(tab).classList.toggle("hidden", tab !== name);
    $("tab-" + tab).setAttribute("aria-selected", String(tab === name));
  }
}

// --- frames -----------------------------------------------------------------------------

function onFrame(f) {
  switch (f.type) {
    case "welcome":
      state.me = f;
      $("who").textContent = `代办员 ${f.agent_id}`;
      // The snapshot follows at once: every offer still open to this agent.  A card not in
      // it was claimed or withdrawn while the connection was down.
      state.snapshotAt = Date.now();
      for (const entry of state.offers.values()) entry.stale = true;
      clearTimeout(state.sweep);
      state.sweep = setTimeout(dropStale, SNAPSHOT_MS);
      loadPlaces(f.grids);
      loadMine();
      break;
    case "held":
      state.held = f.held;
      state.limit = f.limit;
      $("held").textContent = `在办 ${f.held}/${f.limit}`;
      for (const entry of state.offers.values()) renderOffer(entry);
      loadMine();
      break;
    case "offer":
      onOffer(f.order);
      break;
    case "withdrawn":
      onWithdrawn(f.order_id);
      break;
    case "claim_result":
      onClaimResult(f);
      break;
    case "update":
      onUpdate(f.order, f.event);
      break;
    case "error":
      toast(`服务器：${f.message}`, "error");
      break;
    default:
      break;
  }
}

function onOffer(order) {
  const known = state.offers.get(order.id);
  // Frames in the first moment after welcome are the snapshot: no bell for those.
  const isNew = !known && Date.now() - (state.snapshotAt || 0) > SNAPSHOT_MS;
  const entry = known || { order, el: null, claim: null, withdrawn: false };
  entry.order = order;
  entry.withdrawn = false;
  entry.stale = false;
  state.offers.set(order.id, entry);
  loadPlaces([order.grid]);
  renderOffer(entry);
  placeOffers();
  if (isNew) alertNewOffer(order);
}

function onWithdrawn(orderId) {
  const entry = state.offers.get(orderId);
  if (!entry) return;
  entry.withdrawn = true;
  // A card whose grab is under way or answered keeps showing the answer for a moment.
  if (entry.claim) {
    if (entry.claim.result) setTimeout(() => dropOffer(orderId), 2500);
    return;
  }
  dropOffer(orderId);
}

function dropStale() {
  for (const [id, entry] of state.offers) if (entry.stale && !entry.claim) dropOffer(id);
}

function dropOffer(orderId) {
  const entry = state.offers.get(orderId);
  if (!entry) return;
  if (entry.el) entry.el.remove();
  state.offers.delete(orderId);
  placeOffers();
}

function onClaimResult(f) {
  const entry = state.offers.get(f.order_id);
  if (!entry || !entry.claim || entry.claim.rid !== f.request_id) return;
  clearTimeout(entry.claim.timer);
  entry.claim.result = f.result;
  renderOffer(entry);
  if (f.result === "won") {
    toast(`已抢到工单 #${f.order_id}，请到“我的工单”受理`, "info");
    loadMine();
    setTimeout(() => dropOffer(f.order_id), 2500);
  } else if (f.result === "taken" || f.result === "not_offered" || f.result === "unknown_order" || entry.withdrawn) {
    setTimeout(() => dropOffer(f.order_id), 2500);
  } else {
    // limit reached / unavailable: the card stays and may be grabbed again.
    setTimeout(() => {
      if (entry.claim && entry.claim.result === f.result) {
        entry.claim = null;
        renderOffer(entry);
      }
    }, 4000);
  }
}

function onUpdate(order, event) {
  if (HELD.includes(order.status) && (!state.me || order.claimed_by === state.me.agent_id)) {
    state.mine.set(order.id, order);
  } else if (state.mine.has(order.id)) {
    state.mine.delete(order.id);
    const why = event && event.label ? event.label : STATUS[order.status] || order.status;
    toast(`工单 #${order.id}：${why}`);
  }
  renderMine();
}

// --- offers -----------------------------------------------------------------------------

function grab(entry) {
  if (entry.claim && !entry.claim.result) return;
  // The same request id on a retry: the server remembers the answer it gave it.
  const rid = entry.claim && entry.claim.rid ? entry.claim.rid : `app-${entry.order.id}-${Math.random().toString(36).slice(2, 10)}`;
  entry.claim = { rid, result: null };
  unlockAudio();
  if (!live.send({ type: "claim", order_id: entry.order.id, request_id: rid })) {
    entry.claim.result = "timeout";
  } else {
    entry.claim.timer = setTimeout(() => {
      if (entry.claim && !entry.claim.result) {
        entry.claim.result = "timeout";
        renderOffer(entry);
      }
    }, 10000);
  }
  renderOffer(entry);
}

function placeName(code) {
  const p = state.places.get(code);
  return p ? p.path.slice(1).join(" ") || p.name : code;
}

function isOwnGrid(order) {
  return state.me ? state.me.grids.includes(order.grid) : true;
}

function renderOffer(entry) {
  const o = entry.order;
  const atLimit = state.held >= state.limit;
  const claim = entry.claim;
  let button;
  if (claim && claim.result) {
    const won = claim.result === "won";
    const text = claim.result === "limit_reached" ? `已达上限（在办 ${state.held}/${state.limit}）` : CLAIM_TEXT[claim.result] || claim.result;
    button = h("div", { class: `answer ${won ? "won" : "lost"}`, role: "status", text });
    if (claim.result === "unavailable" || claim.result === "timeout") {
      button = h("div", {}, button, h("button", { class: "primary grab", onclick: () => grab(entry) }, "抢单"));
    }
  } else if (claim) {
    button = h("button", { class: "primary grab", disabled: true, "aria-busy": "true" }, "抢单中…");
  } else {
    button = h("button", {
      class: "primary grab",
      disabled: atLimit,
      onclick: () => grab(entry),
    }, "抢单");
  }
  const guide = h("details", { class: "guide", ontoggle: (ev) => ev.target.open && fillGuide(o, ev.target) },
    h("summary", {}, "办事指南"), h("div", { class: "guide-body muted small" }, "加载中…"));
  const card = h("article", {
    class: `card offer${atLimit && !claim ? " greyed" : ""}`,
    dataset: { orderId: String(o.id) },
    "aria-label": `工单 ${o.id}`,
  },
  h("div", { class: "row" },
    h("strong", { class: "grow title" }, o.item_name || "未分类事项"),
    h("span", { class: "pts", text: `+${points(o.item_class)} 分` })),
  h("div", { class: "row small" },
    h("span", { class: "badge" }, classLabel(o.item_class)),
    isOwnGrid(o) ? h("span", { class: "badge green" }, "本网格") : h("span", { class: "badge amber" }, "扩大范围"),
    h("span", { class: "muted" }, `#${o.id}`),
    h("span", { class: "muted ago", dataset: { at: String(o.created_at) } }, ago(o.created_at))),
  o.text ? h("p", { class: "need" }, o.text) : null,
  h("p", { class: "place small" }, "📍 ", placeName(o.grid)),
  guide,
  atLimit && !claim ? h("p", { class: "reason small" }, `在办已满 ${state.limit} 件，办结或退回后才能再抢`) : null,
  button);
  if (entry.el) entry.el.replaceWith(card);
  entry.el = card;
}

async function fillGuide(order, details) {
  const body = details.querySelector(".guide-body");
  const parts = [];
  if (order.materials && order.materials.length) {
    parts.push(h("h3", {}, "所需材料"), h("ul", {}, order.materials.map((m) => h("li", {}, m))));
  }
  if (order.time_limit_days !== null && order.time_limit_days !== undefined) {
    parts.push(h("p", {}, `办理时限：${order.time_limit_days} 个工作日`));
  }
  if (order.item) {
    try {
      let item = state.guides.get(order.item);
      if (!item) {
        item = await api.get(`/v1/catalog/${encodeURIComponent(order.item)}`);
        state.guides.set(order.item, item);
      }
      parts.push(h("h3", {}, "办理步骤"), h("ol", {}, item.steps.map((s) => h("li", {}, s))));
      parts.push(h("p", {}, `收费：${item.fee}`), h("p", {}, `适用对象：${item.eligible}`));
    } catch (err) {
      parts.push(h("p", { class: "error" }, describe(err)));
    }
  }
  body.replaceChildren(...(parts.length ? parts : [h("p", {}, "此单未指定事项，请按需求描述与申请人联系。")]));
}

function placeOffers() {
  const list = $("offer-list");
  const entries = [...state.offers.values()].sort((a, b) => {
    const own = Number(isOwnGrid(b.order)) - Number(isOwnGrid(a.order));
    return own || b.order.created_at - a.order.created_at;
  });
  list.replaceChildren(...entries.map((e) => e.el));
  $("offer-count").textContent = String(entries.length);
  $("offers-empty").classList.toggle("hidden", entries.length > 0);
}

function refreshTimes() {
  for (const el of document.querySelectorAll(".ago")) el.textContent = ago(Number(el.dataset.at));
}

async function loadPlaces(codes) {
  const missing = [...new Set(codes)].filter((c) => !state.places.has(c));
  if (!missing.length) return;
  for (const c of missing) state.places.set(c, null);
  try {
    const data = await api.get(`/v1/places?code=${missing.slice(0, 50).map(encodeURIComponent).join(",")}`);
    for (const p of data.places) state.places.set(p.code, p);
    for (const c of missing) if (!state.places.get(c)) state.places.delete(c);
    for (const entry of state.offers.values()) if (missing.includes(entry.order.grid)) renderOffer(entry);
    placeOffers();
  } catch (err) {
    for (const c of missing) state.places.delete(c);
  }
}

// --- alerts -----------------------------------------------------------------------------

function unlockAudio() {
  if (state.audio || !window.AudioContext) return;
  try {
    state.audio = new AudioContext();
  } catch (err) {
    state.audio = null;
  }
}

function beep() {
  const ctx = state.audio;
  if (!ctx || ctx.state !== "running") return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  osc.stop(ctx.currentTime + 0.6);
}

function alertNewOffer(order) {
  beep();
  if (navigator.vibrate && navigator.userActivation && navigator.userActivation.hasBeenActive) {
    navigator.vibrate([200, 100, 200]);
  }
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    const n = new Notification("帮办：有新单", {
      body: `${order.item_name || "未分类事项"} · ${placeName(order.grid)}`,
      icon: "/static/icons/icon-192.png",
      tag: `offer-${order.id}`,
    });
    n.onclick = () => {
      window.focus();
      n.close();
    };
  }
}

async function askNotifications() {
  // Asked only when the agent taps the button: browsers refuse (and users resent) a prompt
  // that comes unasked at page load.
  const answer = await Notification.requestPermission();
  $("notify").classList.add("hidden");
  toast(answer === "granted" ? "已开启：后台时有新单会弹出通知" : "未开启通知，有新单时仅在页面内响铃");
}

// --- my orders --------------------------------------------------------------------------

async function loadMine() {
  try {
    const data = await api.get("/v1/agent/orders");
    state.mine = new Map(data.orders.map((o) => [o.id, o]));
    loadPlaces(data.orders.map((o) => o.grid));
    renderMine();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      if (live) live.stop();
      denied();
      return;
    }
    toast(describe(err), "error");
  }
}

function renderMine() {
  const list0 = $("mine-list");
  const typing = document.activeElement;
  if (list0.contains(typing) && ["INPUT", "TEXTAREA", "SELECT"].includes(typing.tagName)) {
    // Do not rebuild a form being filled in; catch up when the agent leaves the field.
    typing.addEventListener("blur", () => setTimeout(renderMine, 0), { once: true });
    return;
  }
  const orders = [...state.mine.values()].sort((a, b) => (a.due_at || Infinity) - (b.due_at || Infinity) || a.id - b.id);
  const list = $("mine-list");
  list.replaceChildren(...orders.map((o) => mineCard(o, state.openForms)));
  $("mine-count").textContent = String(orders.length);
  $("mine-empty").classList.toggle("hidden", orders.length > 0);
}

function mineCard(o, open) {
  const due = [];
  if (o.status === "awaiting_materials" && o.supply_by) due.push(`补件截止 ${date(o.supply_by)}`);
  if (o.due_at) due.push(`办结期限 ${date(o.due_at)}`);
  const actions = [];
  const add = (name, label, form) => {
    const key = `${o.id}:${name}`;
    const toggle = (ev) => (ev.target.open ? open.add(key) : open.delete(key));
    actions.push(h("details", { class: "action", dataset: { key }, open: open.has(key), ontoggle: toggle }, h("summary", { class: "button" }, label), form));
  };
  if (o.status === "claimed" && !o.item) add("classify", "定事项", classifyForm(o));
  if (o.status === "claimed") {
    add("accept", "受理", acceptForm(o));
    add("release", "退回", releaseForm(o));
  }
  if (o.status === "awaiting_materials" || (o.status === "accepted" && o.missing.length)) add("supply", "补件", supplyForm(o));
  if (o.status === "awaiting_materials" || o.status === "accepted") add("progress", "进度", progressForm(o));
  if (o.status === "accepted") add("reply", "回复", replyForm(o));
  return h("article", { class: `card mine${o.overdue ? " overdue" : ""}`, dataset: { orderId: String(o.id) }, "aria-label": `我的工单 ${o.id}` },
    h("div", { class: "row" },
      h("strong", { class: "grow" }, o.item_name || "未分类事项"),
      h("span", { class: `badge status ${o.status}` }, STATUS[o.status] || o.status)),
    h("div", { class: "row small muted" }, `#${o.id}`, " · ", placeName(o.grid), " · 接单 ", dateTime(o.claimed_at)),
    o.text ? h("p", { class: "need" }, o.text) : null,
    o.missing.length ? h("p", { class: "small" }, "缺少材料：", o.missing.join("、")) : null,
    due.length ? h("p", { class: `small${o.overdue ? " error" : ""}` }, o.overdue ? "已超期 · " : "", due.join(" · ")) : null,
    h("div", { class: "actions" }, actions));
}

function field(label, input) {
  const id = `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input);
}

function checks(names, prefix) {
  return names.map((m) => h("label", { class: "check" }, h("input", { type: "checkbox", name: prefix, value: m }), m));
}

function picked(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

function actionForm(o, action, build, collect, done) {
  const message = h("p", { class: "error small", role: "alert" });
  const form = h("form", { class: "form", "data-action": action }, build(), message, h("button", { class: "primary", type: "submit" }, "提交"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    message.textContent = "";
    let body;
    try {
      body = collect(form);
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const answer = await api.post(`/v1/orders/${o.id}/${action}`, { ...body, version: o.version });
      toast(`#${o.id} ${done}`);
      state.openForms.delete(`${o.id}:${action}`);
      onUpdate(answer, answer.event);
    } catch (err) {
      message.textContent = describe(err);
      if (err instanceof ApiError && (err.code === "conflict" || err.code === "illegal_transition")) loadMine();
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function acceptForm(o) {
  return actionForm(o, "accept", () => {
    const supplyBy = h("input", { type: "date", name: "supply_by" });
    return h("div", {},
      o.materials.length ? h("fieldset", {}, h("legend", {}, "已收材料（请逐项核对）"), checks(o.materials, "received")) : h("p", { class: "small muted" }, "此单无材料清单。"),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "green_card" }), "容缺受理（绿色通道，缺件可后补）"),
      field("补件截止日期（缺材料时必填）", supplyBy));
  }, (form) => {
    const received = picked(form, "received");
    const body = { received, green_card: form.querySelector('input[name="green_card"]').checked };
    const day = form.querySelector('input[name="supply_by"]').value;
    const missing = o.materials.filter((m) => !received.includes(m));
    if (day) body.supply_by = new Date(`${day}T18:00:00`).getTime();
    if (missing.length && !body.green_card && !day) throw new Error("缺少材料：请填补件截止日期，或选择容缺受理");
    return body;
  }, "已受理");
}

function supplyForm(o) {
  return actionForm(o, "supply", () => h("fieldset", {}, h("legend", {}, "本次补交的材料"), checks(o.missing, "received")),
    (form) => {
      const received = picked(form, "received");
      if (!received.length) throw new Error("请勾选补交的材料");
      return { received };
    }, "已登记补件");
}

function progressForm(o) {
  return actionForm(o, "progress", () => {
    const desk = h("select", { name: "desk" }, h("option", { value: "" }, "（不选）"),
      Object.entries(DESKS).map(([v, label]) => h("option", { value: v }, label)));
    return h("div", {}, field("进度说明", h("textarea", { name: "note", required: true })), field("办理窗口", desk));
  }, (form) => {
    const note = form.querySelector("textarea").value.trim();
    if (!note) throw new Error("请填写进度说明");
    const desk = form.querySelector("select").value;
    return desk ? { note, desk } : { note };
  }, "已记录进度");
}

function replyForm(o) {
  return actionForm(o, "reply", () => h("div", {},
    field("办理结果", h("textarea", { name: "result", required: true })),
    field("业务编号（每行一个）", h("textarea", { name: "references" })),
    field("代缴费用（每行：项目 金额元，如“工本费 20”）", h("textarea", { name: "fees" }))),
  (form) => {
    const result = form.querySelector('textarea[name="result"]').value.trim();
    if (!result) throw new Error("请填写办理结果");
    const lines = (name) => form.querySelector(`textarea[name="${name}"]`).value.split("\n").map((s) => s.trim()).filter(Boolean);
    const fees = lines("fees").map((line) => {
      const m = line.match(/^(.+?)\s+([0-9]+(?:\.[0-9]{1,2})?)\s*元?$/);
      if (!m) throw new Error(`费用写法有误：“${line}”，应为“项目 金额”`);
      return { item: m[1], amount_fen: Math.round(Number(m[2]) * 100) };
    });
    return { result, references: lines("references"), fees };
  }, "已回复申请人");
}

function classifyForm(o) {
  // A free-text order gets its catalogue item, and with it the materials checklist.
  const select = h("select", { name: "item" }, h("option", { value: "" }, "选择事项…"));
  catalogue().then((items) => select.append(...items.map((i) => h("option", { value: i.code }, `${i.name}（${i.category}）`))));
  return actionForm(o, "classify", () => field("办理事项", select), () => {
    if (!select.value) throw new Error("请选择事项");
    return { item: select.value };
  }, "已定事项");
}

let catalogueItems = null;
function catalogue() {
  if (!catalogueItems) catalogueItems = api.get("/v1/catalog").then((d) => d.items).catch(() => (catalogueItems = null, []));
  return catalogueItems;
}

function releaseForm(o) {
  return actionForm(o, "release", () => field("退回原因（选填）", h("input", { name: "reason" })), (form) => {
    const reason = form.querySelector("input").value.trim();
    return reason ? { reason } : {};
  }, "已退回，将重新派单");
}

start();
