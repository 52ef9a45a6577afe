"""HTTP API client (PROTOCOL.md) on ``httpx.AsyncClient``, for operators' scripts and tests::

    async with ApiClient("http://127.0.0.1:8000", admin_token) as admin:
        await admin.create_grid("G1", "Grid one")
        agent = await admin.create_agent("Li", "13800000000", ["G1"])   # agent["token"]

Every method but :meth:`ApiClient.request` and :meth:`ApiClient.healthz` returns the decoded
body of a 2xx answer and raises :class:`ApiError` otherwise.  Transport failures raise httpx's
own exceptions (``httpx.TransportError``), unwrapped.
"""

from __future__ import annotations

import functools
import ssl
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import msgpack

from clients.framesocket import ClientError

__all__ = ["MSGPACK", "ApiClient", "ApiError"]

MSGPACK = "application/msgpack"


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``),
    made once per process and shared by every client: building one loads the CA bundle, tens
    of milliseconds of CPU that a script opening a client per call would pay on each."""
    return httpx.create_ssl_context()


class ApiError(ClientError):
    """A non-2xx answer.  ``code`` and ``message`` come from the error body
    ``{"error": {"code", "message"}}``; ``code`` is None when the body was not one (e.g. a
    proxy's error page), and ``message`` is then the start of the body text."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(
            f"HTTP {status} {code}: {message}" if code else f"HTTP {status}: {message}"
        )
        self.status = status
        self.code = code
        self.message = message


class ApiClient:
    """An HTTP client for one token (None: send no ``Authorization``).

    With ``msgpack=True`` request bodies are sent as ``application/msgpack`` and msgpack
    answers are asked for; answers are decoded by their ``Content-Type`` either way.  Use as
    ``async with``, or call :meth:`aclose`.
    """

    def __init__(
        self, base_url: str, token: str | None, *, timeout: float = 10, msgpack: bool = False
    ) -> None:
        headers = {"Accept": MSGPACK if msgpack else "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._msgpack = msgpack
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, verify=_tls()
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- generic ---------------------------------------------------------------------------

    async def request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """Send ``json`` (when not None) as the body, encoded per ``msgpack``; return the raw
        response without checking its status.  :meth:`decode` reads its body."""
        if json is None:
            return await self._http.request(method, path)
        if self._msgpack:
            content: bytes = msgpack.packb(json, use_bin_type=True)
            return await self._http.request(
                method, path, content=content, headers={"Content-Type": MSGPACK}
            )
        return await self._http.request(method, path, json=json)

    @staticmethod
    def decode(response: httpx.Response) -> Any:
        """The response body decoded by its ``Content-Type`` (msgpack or JSON); None when
        empty.  Raises ValueError when it is neither."""
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith(MSGPACK):
            try:
                return msgpack.unpackb(response.content, raw=False, strict_map_key=False)
            except Exception as exc:  # msgpack raises several unrelated types
                raise ValueError(f"body is not valid MessagePack: {exc}") from None
        return response.json()

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        return _checked(await self.request(method, path, json))

    async def _object(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        response = await self.request(method, path, json)
        body = _checked(response)
        if not isinstance(body, dict):
            kind = type(body).__name__
            raise ApiError(response.status_code, None, f"expected an object, got {kind}")
        return body

    # --- endpoints (PROTOCOL.md) -------------------------------------------------------------

    async def healthz(self) -> tuple[int, Any]:
        """``GET /v1/healthz``: (status code, decoded body or None); never raises ApiError."""
        response = await self.request("GET", "/v1/healthz")
        try:
            return response.status_code, self.decode(response)
        except ValueError:
            return response.status_code, None

    async def file_order(
        self,
        *,
        grid: str | None = None,
        item: str | None = None,
        text: str | None = None,
        location: Mapping[str, float] | None = None,
        address: str | None = None,
        applicant: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """``POST /v1/orders`` (intake or admin token): the order plus its ``tracking_token``.
        ``location`` is ``{"lat": ..., "lon": ...}``.  Arguments left None are not sent."""
        fields = {
            "grid": grid,
            "item": item,
            "text": text,
            "location": dict(location) if location is not None else None,
            "address": address,
            "applicant": dict(applicant) if applicant is not None else None,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return await self._object("POST", "/v1/orders", {**body, **extra})

    async def get_order(self, order_id: int) -> dict[str, Any]:
        """``GET /v1/orders/{id}``: the order."""
        return await self._object("GET", f"/v1/orders/{order_id}")

    async def claim(self, order_id: int, request_id: str | None = None) -> dict[str, Any]:
        """``POST /v1/orders/{id}/claim`` (agent token): the ClaimResult map.  A lost claim is
        a 200 answer with ``result`` other than ``won``, not an error.  ``request_id``
        defaults to a fresh uuid4 hex; reuse one to retry the same attempt."""
        rid = uuid.uuid4().hex if request_id is None else request_id
        return await self._object("POST", f"/v1/orders/{order_id}/claim", {"request_id": rid})

    async def create_grid(self, code: str, name: str, **extra: Any) -> dict[str, Any]:
        """``POST /v1/admin/grids``: the grid (created, or updated when ``code`` exists)."""
        return await self._object("POST", "/v1/admin/grids", {"code": code, "name": name, **extra})

    async def create_agent(
        self, name: str, phone: str, grids: Sequence[str], **extra: Any
    ) -> dict[str, Any]:
        """``POST /v1/admin/agents``: ``{id, name, phone, grids, token}``; the agent's token is
        returned only here."""
        body = {"name": name, "phone": phone, "grids": list(grids), **extra}
        return await self._object("POST", "/v1/admin/agents", body)

    async def create_token(self, kind: str, name: str) -> dict[str, Any]:
        """``POST /v1/admin/tokens`` (``kind`` is ``intake``): ``{token}``."""
        return await self._object("POST", "/v1/admin/tokens", {"kind": kind, "name": name})

    async def list_grids(self) -> Any:
        """``GET /v1/admin/grids``: the decoded body, as the server shapes it."""
        return await self._call("GET", "/v1/admin/grids")

    async def list_agents(self) -> Any:
        """``GET /v1/admin/agents``: the decoded body, as the server shapes it."""
        return await self._call("GET", "/v1/admin/agents")

    # --- after the grab: the workflow ------------------------------------------------------

    async def act(
        self, order_id: int, action: str, *, version: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """``POST /v1/orders/{id}/<action>`` (``accept``, ``supply``, ``progress``, ``reply``,
        ``rate``, ``release``, ``cancel``, ``reassign``, ``assign``, ``classify``) with the
        action's fields: the order as recorded plus ``event``, the trail entry added.  With
        ``version`` the server refuses (409 ``conflict``) if the order changed since."""
        body = {**fields, **({} if version is None else {"version": version})}
        return await self._object("POST", f"/v1/orders/{order_id}/{action}", body)

    async def order_events(self, order_id: int) -> list[dict[str, Any]]:
        """``GET /v1/orders/{id}/events``: the order's trail, oldest first."""
        body = await self._object("GET", f"/v1/orders/{order_id}/events")
        events: list[dict[str, Any]] = body["events"]
        return events

    async def held_orders(self) -> dict[str, Any]:
        """``GET /v1/agent/orders`` (agent token): ``{orders, limit}``, the orders held."""
        return await self._object("GET", "/v1/agent/orders")

    async def list_orders(self, **filters: str | int) -> list[dict[str, Any]]:
        """``GET /v1/admin/orders`` with ``status``, ``overdue``, ``agent_id``, ``after``,
        ``limit`` as given: the orders, each with ``overdue``."""
        query = urlencode(filters)
        body = await self._object("GET", "/v1/admin/orders" + (f"?{query}" if query else ""))
        orders: list[dict[str, Any]] = body["orders"]
        return orders

    # --- catalogue ----------------------------------------------------------------------------

    async def catalog(self) -> list[dict[str, Any]]:
        """``GET /v1/catalog``: the live catalogue items with their service guides."""
        body = await self._object("GET", "/v1/catalog")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def catalog_item(self, code: str) -> dict[str, Any]:
        """``GET /v1/catalog/{code}``: one item (404 ``unknown_item``)."""
        return await self._object("GET", f"/v1/catalog/{code}")

    async def import_agents(self, roster_csv: str) -> list[dict[str, Any]]:
        """``POST /v1/admin/agents/import`` with a ``name,phone,grids`` CSV (all or nothing):
        the agents created, each with its ``token``."""
        response = await self._http.post(
            "/v1/admin/agents/import",
            content=roster_csv.encode(),
            headers={"Content-Type": "text/csv; charset=utf-8"},
        )
        body = _checked(response)
        agents: list[dict[str, Any]] = body["agents"]
        return agents


def _checked(response: httpx.Response) -> Any:
    """The decoded body of a 2xx response; raises ApiError for any other status."""
    if not response.is_success:
        raise _error(response)
    return ApiClient.decode(response)


def _error(response: httpx.Response) -> ApiError:
    """The ApiError for a non-2xx response, from its error body when it has one."""
    try:
        body = ApiClient.decode(response)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return ApiError(response.status_code, error["code"], str(error.get("message", "")))
    return ApiError(response.status_code, None, response.text[:200])
