// The intake page: a catalogue item or free text, an address completed from the gazetteer
// (GET /v1/places), the applicant; POST /v1/orders; the tracking link as text and QR code.
import { Api, ApiError, describe, signOut, takeToken } from "/static/common/api.js";
import { h } from "/static/common/fmt.js";

const KEY = "bangban.intake.token";
const $ = (id) => document.getElementById(id);

let api = null;
let items = [];
let item = null; // the picked catalogue item
let place = null; // the picked place suggestion
let grid = null; // a grid picked among ambiguous candidates
let where = null; // {lat, lon} from the device, when the person chose it
let timer = null;
let qrUrl = null;

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
    $("nosign").classList.remove("hidden");
    return;
  }
  api = new Api(token);
  $("form").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  $("signout").addEventListener("click", () => {
    signOut(KEY);
    location.replace("/file");
  });
  $("item-search").addEventListener("input", renderItems);
  $("address").addEventListener("input", () => {
    place = null;
    grid = null;
    where = null;
    $("located").textContent = "";
    $("candidates").classList.add("hidden");
    clearTimeout(timer);
    timer = setTimeout(suggest, 200);
  });
  $("address").addEventListener("keydown", onAddressKey);
  $("address").addEventListener("blur", () => setTimeout(closePlaces, 200));
  $("form").addEventListener("submit", submit);
  $("locate").addEventListener("click", locate);
  if (!("geolocation" in navigator)) $("locate").classList.add("hidden");
  $("again").addEventListener("click", reset);
  loadItems();
}

async function loadItems() {
  try {
    items = (await api.get("/v1/catalog")).items;
  } catch (err) {
    $("form-error").textContent = describe(err);
    if (err instanceof ApiError && err.status === 401) {
      signOut(KEY);
      $("form").classList.add("hidden");
      $("nosign").classList.remove("hidden");
    }
  }
}

function renderItems() {
  const q = $("item-search").value.trim();
  const box = $("items");
  if (!q) {
    box.replaceChildren();
    return;
  }
  const found = items.filter((i) => i.name.includes(q) || i.category.includes(q) || i.code.includes(q.toUpperCase())).slice(0, 8);
  box.replaceChildren(...(found.length ? found.map((i) => h("button", {
    type: "button",
    role: "option",
    "aria-selected": String(item === i),
    onclick: () => pickItem(i),
  }, `${i.name}（${i.category}）`)) : [h("p", { class: "muted small" }, "没有找到，可直接在下面写需求")]));
}

function pickItem(i) {
  item = item === i ? null : i;
  $("item-picked").textContent = item ? `已选：${item.name} · 需带材料：${item.materials.join("、") || "无"}` : "";
  renderItems();
}

async function suggest() {
  const q = $("address").value.trim();
  if (!q) {
    closePlaces();
    return;
  }
  try {
    const data = await api.get(`/v1/places?q=${encodeURIComponent(q.slice(0, 50))}&limit=8`);
    if ($("address").value.trim() !== q) return; // typed on meanwhile
    const list = $("places");
    list.replaceChildren(...data.places.map((p, i) => h("li", {
      role: "option",
      id: `place-${i}`,
      "aria-selected": "false",
      onmousedown: (ev) => {
        ev.preventDefault();
        pickPlace(p);
      },
    }, p.path.join(" "))));
    list.classList.toggle("hidden", data.places.length === 0);
    $("address").setAttribute("aria-expanded", String(data.places.length > 0));
    list._places = data.places;
  } catch (err) {
    closePlaces();
  }
}

function onAddressKey(ev) {
  const list = $("places");
  const options = [...list.querySelectorAll("li")];
  if (list.classList.contains("hidden") || !options.length) return;
  let at = options.findIndex((o) => o.getAttribute("aria-selected") === "true");
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    at = ev.key === "ArrowDown" ? Math.min(at + 1, options.length - 1) : Math.max(at - 1, 0);
    options.forEach((o, i) => o.setAttribute("aria-selected", String(i === at)));
    $("address").setAttribute("aria-activedescendant", options[at].id);
  } else if (ev.key === "Enter" && at >= 0) {
    ev.preventDefault();
    pickPlace(list._places[at]);
  } else if (ev.key === "Escape") {
    closePlaces();
  }
}

function pickPlace(p) {
  place = p;
  $("address").value = p.address;
  closePlaces();
}

function locate() {
  // Asked only on this tap: the position is used for routing this one request.
  $("located").textContent = "定位中…";
  navigator.geolocation.getCurrentPosition((pos) => {
    where = { lat: pos.coords.latitude, lon: pos.coords.longitude };
    $("address").value = ""; // the latest choice wins: the position, not an older address
    place = null;
    grid = null;
    $("located").textContent = `已定位（${where.lat.toFixed(5)}, ${where.lon.toFixed(5)}），将按位置派单`;
  }, () => {
    where = null;
    $("located").textContent = "无法定位，请填写地址";
  }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
}

function closePlaces() {
  $("places").classList.add("hidden");
  $("address").setAttribute("aria-expanded", "false");
}

async function submit(ev) {
  ev.preventDefault();
  const error = $("form-error");
  error.textContent = "";
  const text = $("need").value.trim();
  const address = $("address").value.trim();
  if (!item && !text) {
    error.textContent = "请选择事项，或写下需求";
    return;
  }
  if (!address && !grid && !where) {
    error.textContent = "请填写地址，或用当前位置";
    return;
  }
  const body = {};
  if (item) body.item = item.code;
  if (text) body.text = text;
  if (grid) body.grid = grid;
  else if (address) body.address = address;
  else body.location = where;
  const applicant = {};
  if ($("name").value.trim()) applicant.name = $("name").value.trim();
  if ($("phone").value.trim()) applicant.phone = $("phone").value.trim();
  if (Object.keys(applicant).length) body.applicant = applicant;
  const button = $("submit");
  button.disabled = true;
  try {
    const order = await api.post("/v1/orders", body);
    await done(order);
  } catch (err) {
    error.textContent = describe(err);
    if (err instanceof ApiError && err.code === "ambiguous_address") showCandidates(err.details.candidates || []);
  } finally {
    button.disabled = false;
  }
}

function showCandidates(candidates) {
  const box = $("candidates");
  box.replaceChildren(h("p", { class: "small" }, "这个地址对应多个地方，请选一个："),
    ...candidates.slice(0, 20).map((c) => h("button", {
      type: "button",
      onclick: () => {
        grid = c.code;
        box.replaceChildren(h("p", { class: "ok small" }, `已选：${c.name}`));
      },
    }, c.name)));
  box.classList.remove("hidden");
}

async function done(order) {
  $("form").classList.add("hidden");
  $("done").classList.remove("hidden");
  $("done-id").textContent = `#${order.id}`;
  const link = $("done-link");
  link.href = order.tracking_url;
  link.textContent = order.tracking_url;
  try {
    // The QR code is asked for with the order's own tracking token.
    const r = await new Api(order.tracking_token).call("GET", `/v1/orders/${order.id}/tracking-qr`, undefined, { raw: true });
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = URL.createObjectURL(await r.blob());
    $("done-qr").src = qrUrl;
  } catch (err) {
    $("done-qr").alt = "二维码暂时无法显示，请使用上面的链接";
  }
}

function reset() {
  $("form").reset();
  item = null;
  place = null;
  grid = null;
  where = null;
  $("located").textContent = "";
  $("item-picked").textContent = "";
  $("items").replaceChildren();
  $("candidates").classList.add("hidden");
  $("done").classList.add("hidden");
  $("form").classList.remove("hidden");
  $("form-error").textContent = "";
}

start();
