// Words and numbers for people: status names, dates, money; and `h`, a tiny DOM builder
// (text is always set as text, never as HTML, so nothing from the server is interpreted).

export const STATUS = {
  offered: "派单中",
  widened: "扩大派单",
  claimed: "已接单",
  accepted: "办理中",
  awaiting_materials: "待补件",
  replied: "已回复",
  closed: "已办结",
  cancelled: "已取消",
  escalated: "待指派",
};

export const DESKS = { village: "村级", township: "乡镇", county: "县级" };
export const RATINGS = ["非常满意", "满意", "一般", "不满意"];
export const HELD = ["claimed", "accepted", "awaiting_materials"];
export const OPEN = ["offered", "widened", "claimed", "accepted", "awaiting_materials", "escalated"];

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const pad = (n) => String(n).padStart(2, "0");

export function dateTime(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return `${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function date(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日`;
}

export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return "刚刚";
  if (s < 3600) return `${Math.floor(s / 60)}分钟前`;
  if (s < 86400) return `${Math.floor(s / 3600)}小时前`;
  return `${Math.floor(s / 86400)}天前`;
}

export function yuan(fen) {
  return (fen / 100).toFixed(2).replace(/\.00$/, "") + " 元";
}

// Points a closed order earns its agent at least (class 1: 1.5, class 2: 2; seed 002).
export function points(itemClass) {
  return itemClass === 1 ? 1.5 : 2;
}

export function classLabel(itemClass) {
  return itemClass === 1 ? "一类事项" : "二类事项";
}

export function toast(text, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const t = h("div", { class: `toast ${kind}`, text });
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}
