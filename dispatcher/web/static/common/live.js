// One live websocket (JSON frames), kept open: reconnects with capped exponential backoff and
// jitter, says its state (connecting / connected / reconnecting / offline / denied), and waits
// for GET /v1/healthz to answer before each new attempt, so an outage costs one cheap probe
// per attempt rather than a websocket handshake carrying the token.

const MIN_DELAY = 500;
const MAX_DELAY = 15000;

export class Live {
  constructor(path, token, { onFrame, onState, onOpen } = {}) {
    this.path = path;
    this.token = token;
    this.onFrame = onFrame || (() => {});
    this.onState = onState || (() => {});
    this.onOpen = onOpen || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.state = "connecting";
    this.everConnected = false;
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.setState("offline"));
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams({ encoding: "json", token: this.token });
    return `${scheme}//${location.host}${this.path}?${q}`;
  }

  open() {
    if (this.stopped) return;
    if (navigator.onLine === false) {
      this.setState("offline"); // the "online" event brings it back
      return;
    }
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.everConnected = true;
      this.setState("connected");
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4401 || ev.code === 4403) {
        this.stopped = true;
        this.setState("denied");
        return;
      }
      this.schedule();
    };
  }

  schedule() {
    clearTimeout(this.timer);
    if (navigator.onLine === false) {
      this.setState("offline"); // the "online" event brings it back
      return;
    }
    this.setState("reconnecting");
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt = Math.min(this.attempt + 1, 10);
    this.timer = setTimeout(() => this.probe(), delay);
  }

  retryNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    clearTimeout(this.timer);
    this.probe();
  }

  async probe() {
    if (this.stopped || this.ws) return;
    try {
      const r = await fetch("/v1/healthz", { cache: "no-store" });
      if (r.ok) {
        this.open();
        return;
      }
    } catch (err) {
      // the server is not there yet
    }
    this.schedule();
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}

export const STATE_LABELS = {
  connecting: "连接中…",
  connected: "已连接",
  reconnecting: "重新连接中…",
  offline: "离线",
  denied: "登录已失效",
};

// Shows `live`'s state in `el` (text and a data-state attribute the CSS colours).
export function indicator(el, state) {
  el.dataset.state = state;
  el.textContent = STATE_LABELS[state] || state;
  el.setAttribute("aria-label", "连接状态：" + (STATE_LABELS[state] || state));
}
