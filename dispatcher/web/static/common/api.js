// The public HTTP API from a page: the token from the URL fragment, JSON in and out, errors
// as ApiError with the server's stable code.  No framework; every page imports this module.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

// The token handed out as a link (`…#token=…`): moved from the fragment into localStorage
// under `key` and removed from the address bar, so it is neither shared by copying the URL
// nor ever sent to a server (browsers never send fragments).  Returns the stored token.
export function takeToken(key) {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    localStorage.setItem(key, token.trim());
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  return localStorage.getItem(key);
}

// A link with a token opened in a tab already showing the page changes only the fragment:
// load the page again so the new token is taken.
window.addEventListener("hashchange", () => {
  if (/(^#|&)token=/.test(location.hash)) location.reload();
});

export function signOut(key) {
  localStorage.removeItem(key);
  if ("caches" in window) caches.delete("bangban-api").catch(() => {});
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async call(method, path, body, { raw = false, contentType = "application/json" } = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = contentType;
      init.body = contentType === "application/json" ? JSON.stringify(body) : body;
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, "offline", "网络不通，请稍后重试");
    }
    if (raw && response.ok) return response;
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(response.status, e.code || "http_" + response.status, e.message || response.statusText, e.details);
    }
    return data;
  }

  get(path) {
    return this.call("GET", path);
  }

  post(path, body) {
    return this.call("POST", path, body === undefined ? {} : body);
  }
}

// Chinese for the stable error codes a person may meet; the server's message follows.
const CODES = {
  offline: "网络不通，请稍后重试",
  unauthorized: "登录已失效，请重新打开管理员发给您的链接",
  forbidden: "无权进行此操作",
  not_found: "找不到该工单",
  conflict: "工单刚被他人更新，已刷新，请再试一次",
  illegal_transition: "工单当前状态不允许此操作",
  invalid_value: "填写有误",
  missing_field: "有必填项未填",
  unknown_field: "请求有误",
  unroutable: "找不到这个地址所在的网格",
  ambiguous_address: "地址不够具体，请从下面选一个",
  unknown_agent: "没有这个代办员",
  unknown_item: "没有这个事项",
  retired_item: "该事项已停用",
  duplicate_item: "事项编码已存在",
  invalid_grid_file: "网格文件有问题",
  invalid_roster: "名册文件有问题",
  duplicate_phone: "名册中有已登记的手机号",
  unknown_grid: "名册中有不存在的网格",
  unavailable: "服务暂时不可用，请稍后重试",
  too_large: "文件太大",
};

export function describe(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  const zh = CODES[err.code];
  if (!zh) return err.message;
  return err.message && err.code !== "offline" ? `${zh}（${err.message}）` : zh;
}
