// The applicant's page: the order and its trail, live through the tracking websocket; the
// rating after the reply; cancelling while the order allows it.
import { Api, describe, takeToken } from "/static/common/api.js";
import { Live, indicator } from "/static/common/live.js";
import { date, dateTime, h, toast, yuan } from "/static/common/fmt.js";

const $ = (id) => document.getElementById(id);
const match = location.pathname.match(/^\/t\/(\d+)$/);
const orderId = match ? Number(match[1]) : 0;
const KEY = `bangban.track.${orderId}`;

const PLAIN = {
  offered: ["正在派单", "正在为您寻找代办员，有人接单后会与您联系。"],
  widened: ["正在派单", "已扩大派单范围，更多代办员可以接单。"],
  claimed: ["代办员已接单", "代办员会尽快与您联系，核对需要的材料。"],
  accepted: ["正在办理", "代办员已受理，正在为您办理。"],
  awaiting_materials: ["请补齐材料", "代办员已收到您的申请，还缺下列材料，请在期限前交给代办员。"],
  replied: ["已办好，请您评价", "代办员已回复办理结果，请看下面的回复并评价。"],
  closed: ["已办结", "本次代办已办结，感谢您的信任。"],
  cancelled: ["已取消", "本次代办已取消。"],
  escalated: ["已转交政务专员", "暂时无人接单，政务专员会为您指派代办员。"],
};
const CANCELLABLE = ["offered", "widened", "claimed", "escalated"];

let api = null;
let order = null;
let events = [];

function start() {
  const token = orderId ? takeToken(KEY) : null;
  if (!token) {
    indicator($("conn"), "offline");
    $("nosign").classList.remove("hidden");
    return;
  }
  api = new Api(token);
  $("order-id").textContent = `#${orderId}`;
  $("rate").addEventListener("submit", rate);
  $("cancel-go").addEventListener("click", cancel);
  const live = new Live(`/v1/orders/${orderId}/ws`, token, {
    onState: (s) => {
      indicator($("conn"), s);
      if (s === "denied") {
        $("view").classList.add("hidden");
        $("nosign").classList.remove("hidden");
        $("nosign-error").textContent = "查询链接无效，或不是这张工单的链接。";
      }
    },
    onFrame: (f) => {
      if (f.type !== "status") return;
      order = { ...(order || {}), ...f.order };
      render();
      loadTrail();
    },
  });
  live.start();
}

async function loadTrail() {
  try {
    const data = await api.get(`/v1/orders/${orderId}/events`);
    events = data.events;
    render();
  } catch (err) {
    toast(describe(err), "error");
  }
}

function render() {
  if (!order) return;
  $("view").classList.remove("hidden");
  $("title").textContent = order.item_name || "代办申请";
  $("need").textContent = order.text || "";
  const [status, explain] = PLAIN[order.status] || [order.status, ""];
  const rated = order.status === "closed" && order.rating_label ? `（您的评价：${order.rating_label}）` : "";
  $("status").textContent = status;
  $("status").dataset.status = order.status;
  $("explain").textContent = explain + rated;
  const missing = $("missing");
  if (order.missing && order.missing.length && ["awaiting_materials", "accepted"].includes(order.status)) {
    missing.replaceChildren(
      h("strong", {}, "还缺的材料（补件）"),
      h("ul", {}, order.missing.map((m) => h("li", {}, m))),
      order.supply_by ? h("p", {}, `请于 ${date(order.supply_by)} 前补齐`) : null,
    );
    missing.classList.remove("hidden");
  } else {
    missing.classList.add("hidden");
  }
  let due = "";
  if (order.due_at && order.status === "accepted") {
    due = order.overdue ? `已超过办结期限（${date(order.due_at)}），我们会督促办理。` : `预计 ${date(order.due_at)} 前办结`;
  }
  $("due").textContent = due;
  renderReply();
  $("rate").classList.toggle("hidden", order.status !== "replied");
  $("cancel").classList.toggle("hidden", !CANCELLABLE.includes(order.status));
  $("trail").replaceChildren(...events.slice().reverse().map(trailItem));
}

function renderReply() {
  const box = $("reply");
  const replied = [...events].reverse().find((e) => e.kind === "replied");
  if (!replied || !["replied", "closed"].includes(order.status)) {
    box.classList.add("hidden");
    return;
  }
  const d = replied.details;
  box.replaceChildren(
    h("h2", {}, "办理结果"),
    h("p", { class: "result" }, d.result),
    d.references && d.references.length ? h("p", {}, "业务编号：", d.references.join("、")) : null,
    d.fees && d.fees.length
      ? h("div", {}, h("strong", {}, "代缴费用"),
        h("ul", {}, d.fees.map((f) => h("li", {}, `${f.item}：${yuan(f.amount_fen)}`))),
        h("p", {}, `合计 ${yuan(d.fees_total_fen)}`))
      : h("p", { class: "muted" }, "无代缴费用"),
  );
  box.classList.remove("hidden");
}

function trailItem(e) {
  const d = e.details || {};
  const lines = [];
  if (e.kind === "progress") lines.push(d.desk_label ? `【${d.desk_label}】${d.note}` : d.note);
  if (e.kind === "awaiting_materials" && d.missing) lines.push(`缺：${d.missing.join("、")}`);
  if (e.kind === "supplied" && d.received) lines.push(`已交：${d.received.join("、")}`);
  if (e.kind === "replied") lines.push(d.result);
  if (e.kind === "rated") lines.push(d.rating_label + (d.comment ? `：${d.comment}` : ""));
  if (e.kind === "cancelled" && d.reason) lines.push(d.reason);
  return h("li", { dataset: { kind: e.kind } },
    h("div", {}, e.label),
    lines.map((l) => h("div", { class: "small" }, l)),
    h("div", { class: "when" }, dateTime(e.at)));
}

async function rate(ev) {
  ev.preventDefault();
  const picked = document.querySelector('input[name="rating"]:checked');
  if (!picked) {
    $("rate-error").textContent = "请选择一项评价";
    return;
  }
  const body = { rating: picked.value, version: order.version };
  const comment = $("comment").value.trim();
  if (comment) body.comment = comment;
  try {
    const answer = await api.post(`/v1/orders/${orderId}/rate`, body);
    order = { ...order, ...answer };
    toast("感谢您的评价");
    render();
    loadTrail();
  } catch (err) {
    $("rate-error").textContent = describe(err);
  }
}

async function cancel() {
  const reason = $("cancel-reason").value.trim() || "申请人自行取消";
  try {
    const answer = await api.post(`/v1/orders/${orderId}/cancel`, { reason, version: order.version });
    order = { ...order, ...answer };
    render();
    loadTrail();
  } catch (err) {
    $("cancel-error").textContent = describe(err);
  }
}

start();
