// 短信: the console's "phone" for when no gateway is configured (BANGBAN_SMS_URL unset).
// The texts kept in the outbox (GET /v1/admin/sms/messages) shown as one inbox per phone,
// newest first, refreshed every POLL_MS while the page is open; a reply box per phone posts
// to POST /v1/admin/sms/inbound as that phone, so an operator can play an agent answering
// with the order's code.  Also the order detail's delivery log and the agents' presence.
import { describe } from "/static/common/api.js";
import { dateTime, h, toast } from "/static/common/fmt.js";

const POLL_MS = 2000;
const LIMIT = 500;

export const KINDS = {
  offer: "派单",
  claim_reply: "抢单回复",
  applicant_accepted: "已受理",
  applicant_materials: "补件通知",
  applicant_replied: "办理结果",
  applicant_rate: "评价邀请",
};

export const SMS_STATUS = {
  queued: "排队中",
  sending: "发送中",
  sent: "已发送",
  delivered: "已送达",
  failed: "发送失败",
  skipped: "未发送",
};

// POST /v1/admin/sms/inbound's result, for the operator.
const RESULTS = {
  won: "抢单成功",
  taken: "已被他人抢走",
  not_offered: "未向该号码派单",
  limit_reached: "在办已达上限",
  unknown_code: "无此工单代码",
  unknown_order: "无此工单",
  unknown_phone: "不是登记的代办员号码，不回复",
  garbage: "未能识别",
};

const BADGE = { delivered: "green", sent: "blue", failed: "red", skipped: "grey" };

let api = null;
let timer = null;
let generation = 0; // one refresh loop at a time: a loop of an earlier showing stops
const phones = new Map(); // phone -> { card, list, shown }
const sentByMe = new Map(); // phone -> [{ at, text, result }] replies typed here this session

export function mountSms(client) {
  api = client;
}

export function showSmsView(view) {
  clearTimeout(timer);
  generation += 1;
  if (view === "sms") refresh(generation);
}

export function statusBadge(m) {
  return h("span", { class: `badge ${BADGE[m.status] || ""}`, dataset: { status: m.status } }, SMS_STATUS[m.status] || m.status);
}

async function refresh(loop = generation) {
  const state = document.getElementById("sms-state");
  try {
    const data = await api.get(`/v1/admin/sms/messages?limit=${LIMIT}`);
    render(data.messages);
    state.textContent = `${data.messages.length} 条短信 · 更新于 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`;
    state.className = "small muted";
  } catch (err) {
    state.textContent = describe(err);
    state.className = "small error";
  }
  if (loop === generation) timer = setTimeout(() => refresh(loop), POLL_MS);
}

function render(messages) {
  const byPhone = new Map();
  for (const m of messages) {
    if (!byPhone.has(m.to)) byPhone.set(m.to, []);
    byPhone.get(m.to).push(m); // oldest first, as the server gives them
  }
  const box = document.getElementById("sms-phones");
  if (!byPhone.size) {
    phones.clear();
    box.replaceChildren(h("p", { class: "muted" }, "还没有短信。有工单派给不在线的代办员时，短信会出现在这里。"));
    return;
  }
  const order = [...byPhone.entries()].sort(([, a], [, b]) => b[b.length - 1].created_at - a[a.length - 1].created_at);
  for (const [phone, list] of order) {
    let entry = phones.get(phone);
    if (!entry) {
      entry = inbox(phone);
      phones.set(phone, entry);
    }
    const name = list.find((m) => m.agent_name)?.agent_name;
    entry.title.textContent = name ? `${name} ${phone}` : `${phone}（申请人）`;
    const signature = list.map((m) => `${m.id}.${m.status}`).join() + `|${(sentByMe.get(phone) || []).length}`;
    if (signature !== entry.shown) {
      entry.shown = signature;
      entry.list.replaceChildren(...lines(phone, list));
    }
  }
  // Newest inbox first; only moved when the order changed, so a reply being typed keeps focus.
  const wanted = order.map(([phone]) => phones.get(phone).card);
  const current = [...box.children];
  if (wanted.length !== current.length || wanted.some((c, i) => c !== current[i])) box.replaceChildren(...wanted);
}

function lines(phone, list) {
  const items = list.map((m) => ({ at: m.created_at, el: message(m) }));
  for (const mine of sentByMe.get(phone) || []) items.push({ at: mine.at, el: h("li", { class: "sms mine" },
    h("div", { class: "small muted" }, `${dateTime(mine.at)} · 本机回复 · ${mine.result}`), h("div", {}, mine.text)) });
  return items.sort((a, b) => b.at - a.at).map((x) => x.el);
}

function message(m) {
  const when = m.delivered_at || m.sent_at || m.created_at;
  return h("li", { class: "sms", dataset: { kind: m.kind, status: m.status, orderId: m.order_id ? String(m.order_id) : null } },
    h("div", { class: "row small" },
      h("span", { class: "muted grow" }, `${dateTime(when)} · ${KINDS[m.kind] || m.kind}${m.order_id ? ` · 工单 #${m.order_id}` : ""}`),
      statusBadge(m)),
    h("div", {}, m.text),
    m.error || m.note ? h("div", { class: "small error" }, m.error || m.note) : null);
}

function inbox(phone) {
  const title = h("h3", { class: "grow" }, phone);
  const list = h("ol", { class: "inbox" });
  const input = h("input", { name: "text", placeholder: "回复内容，如工单代码", "aria-label": `以 ${phone} 回复`, maxlength: "1000", autocomplete: "off" });
  const message = h("span", { class: "error small", role: "alert" });
  const button = h("button", { class: "primary", type: "submit" }, "回复");
  const form = h("form", { class: "reply" }, input, button, message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) {
      message.textContent = "请输入回复内容";
      return;
    }
    button.disabled = true;
    message.textContent = "";
    try {
      const answer = await api.post("/v1/admin/sms/inbound", { from: phone, text });
      if (!sentByMe.has(phone)) sentByMe.set(phone, []);
      sentByMe.get(phone).push({ at: Date.now(), text, result: RESULTS[answer.result] || answer.result });
      input.value = "";
      toast(`已以 ${phone} 回复：${RESULTS[answer.result] || answer.result}${answer.repeat ? "（重复）" : ""}`);
      clearTimeout(timer);
      generation += 1;
      refresh(generation);
    } catch (err) {
      message.textContent = describe(err);
    } finally {
      button.disabled = false;
    }
  });
  const card = h("article", { class: "card phone", dataset: { phone }, "aria-label": `短信 ${phone}` },
    h("div", { class: "row" }, title), form, list);
  return { card, list, title, shown: null };
}

// --- the order detail's delivery log ---------------------------------------------------

export function deliveryLog(log) {
  if (!log.texts.length) return h("p", { class: "small muted sms-log" }, "没有发过短信。");
  return h("table", { class: "sms-log small", "aria-label": "短信记录" },
    h("thead", {}, h("tr", {}, h("th", {}, "发给"), h("th", {}, "类型"), h("th", {}, "时间"), h("th", {}, "状态"))),
    h("tbody", {}, log.texts.slice().reverse().map((m) => h("tr", { dataset: { status: m.status, kind: m.kind } },
      h("td", {}, m.agent_name ? `${m.agent_name} ${m.to}` : m.to),
      h("td", {}, KINDS[m.kind] || m.kind),
      h("td", {}, dateTime(m.created_at) + (m.delivered_at ? ` · 送达 ${dateTime(m.delivered_at)}` : "")),
      h("td", {}, statusBadge(m), m.error || m.note ? h("div", { class: "muted" }, m.error || m.note) : null)))));
}
