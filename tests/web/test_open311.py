"""Open311 GeoReport v2: read with a third-party client (``georeport`` from PyPI), file with
httpx, XML checked by parsing it (stdlib ElementTree), errors in the specification's format."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from georeport import GeoReport

from clients import ApiClient
from dispatcher.settings import Settings
from tests.servers import InProcessServer, intake_token

LON0, LAT0 = 112.19, 25.37  # 蓝山县, roughly


def square(lon: float, lat: float, size: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


class County:
    def __init__(self, server: InProcessServer, admin: ApiClient, intake: str, agent: str):
        self.server = server
        self.url = server.url
        self.admin = admin
        self.intake = intake
        self.agent = agent

    def client(self, fmt: str = "json") -> GeoReport:
        return GeoReport(self.url + "/open311/v2", output_format=fmt)

    async def post(self, fmt: str = "json", **form: str) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(f"{self.url}/open311/v2/requests.{fmt}", data=form)

    async def file(self, **extra: str) -> str:
        form = {
            "api_key": self.intake,
            "service_code": "HJ-001",
            "lat": f"{LAT0 + 0.02:.2f}",
            "long": f"{LON0 + 0.03:.2f}",
            "description": "想把户口迁回村里",
            "first_name": "三",
            "last_name": "张",
            "phone": "13912345678",
            **extra,
        }
        r = await self.post(**form)
        assert r.status_code == 201, r.text
        rid: str = r.json()[0]["service_request_id"]
        return rid

    async def act(self, token: str, order_id: str, action: str, **body: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{self.url}/v1/orders/{order_id}/{action}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer


@pytest.fixture
async def county(settings: Settings) -> AsyncIterator[County]:
    async with InProcessServer(settings) as server, server.admin() as admin:
        await admin.create_grid("431127", "蓝山县", level="county", geometry=square(LON0, LAT0, 1))
        await admin.create_grid(
            "431127101",
            "太平圩乡",
            level="township",
            parent="431127",
            geometry=square(LON0, LAT0, 0.5),
        )
        await admin.create_grid(
            "431127101001",
            "凌江村",
            level="village",
            parent="431127101",
            geometry=square(LON0, LAT0, 0.1),
        )
        agent = await admin.create_agent("代办员甲", "13900000001", ["431127101001"])
        yield County(server, admin, await intake_token(admin), agent["token"])


async def test_services_are_the_catalogue_via_a_third_party_client(county: County) -> None:
    services = await asyncio.to_thread(county.client().get_service_list)
    catalogue = (await county.admin._call("GET", "/v1/catalog"))["items"]
    assert [s["service_code"] for s in services] == [i["code"] for i in catalogue]
    first, item = services[0], catalogue[0]
    assert first["service_name"] == item["name"] and first["group"] == item["category"]
    assert first["metadata"] is True and first["type"] == "realtime"
    # The same list in XML, parsed by the client (xmltodict) and by ElementTree.
    as_xml = await asyncio.to_thread(county.client("xml").get_service_list)
    assert [s["service_code"] for s in as_xml] == [i["code"] for i in catalogue]
    async with httpx.AsyncClient() as http:
        r = await http.get(county.url + "/open311/v2/services.xml")
    assert r.headers["content-type"].startswith("text/xml")
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(r.content)
    assert root.tag == "services"
    assert root.find("service/metadata") is not None
    assert root.findtext("service/metadata") == "true"


async def test_a_service_definition_lists_the_materials(county: County) -> None:
    definition = await asyncio.to_thread(county.client().get_service_definition, "HJ-001")
    item = await county.admin._call("GET", "/v1/catalog/HJ-001")
    assert definition["service_code"] == "HJ-001"
    assert [a["description"] for a in definition["attributes"]] == item["materials"]
    assert [a["code"] for a in definition["attributes"]] == ["M1", "M2", "M3", "M4"]
    assert definition["attributes"][0]["values"] == [
        {"key": "yes", "name": "有"},
        {"key": "no", "name": "没有"},
    ]
    as_xml = await asyncio.to_thread(county.client("xml").get_service_definition, "HJ-001")
    attrs = as_xml["attributes"]["attribute"]
    assert [a["code"] for a in attrs] == ["M1", "M2", "M3", "M4"]
    assert attrs[0]["values"]["value"][0] == {"key": "yes", "name": "有"}


async def test_filing_through_open311_and_reading_it_back(county: County) -> None:
    rid = await county.file(**{"attribute[M1]": "yes", "attribute[M2]": "no"})
    # The order, as operators see it: same filing path, routed by the point, applicant kept.
    order = await county.admin.get_order(int(rid))
    assert order["grid"] == "431127101001" and order["item"] == "HJ-001"
    assert order["applicant"] == {"name": "张三", "phone": "13912345678"}
    item = await county.admin._call("GET", "/v1/catalog/HJ-001")
    assert order["text"] == (
        f"想把户口迁回村里\n【申请人自述材料】已备：{item['materials'][0]}；缺：{item['materials'][1]}"
    )
    # The public read, through the third-party client, in both formats.
    got = await asyncio.to_thread(county.client().get_service_request, rid)
    assert got["service_request_id"] == rid and got["status"] == "open"
    assert got["service_code"] == "HJ-001" and got["service_name"] == item["name"]
    assert got["agency_responsible"] == "太平圩乡便民服务中心"  # the item's level: township
    assert got["address"] == "蓝山县太平圩乡凌江村"
    assert LAT0 <= got["lat"] <= LAT0 + 0.1 and LON0 <= got["long"] <= LON0 + 0.1
    assert got["requested_datetime"].endswith("Z") and got["expected_datetime"].endswith("Z")
    assert got["expected_datetime"] > got["requested_datetime"]
    assert got["status_notes"] == "您的申请已提交，正在为您派单"
    as_xml = await asyncio.to_thread(county.client("xml").get_service_request, rid)
    assert as_xml["service_request_id"] == rid and as_xml["status"] == "open"
    # No personal data in any public read.
    async with httpx.AsyncClient() as http:
        for path in (f"requests/{rid}.json", f"requests/{rid}.xml", "requests.json"):
            text = (await http.get(f"{county.url}/open311/v2/{path}")).text
            for secret in (
                "张三",
                "13912345678",
                "想把户口",
                f"{LAT0 + 0.02:.2f}",
                f"{LON0 + 0.03:.2f}",
            ):
                assert secret not in text, (path, secret)


async def test_the_desk_and_state_follow_the_workflow(county: County) -> None:
    rid = await county.file()
    item = await county.admin._call("GET", "/v1/catalog/HJ-001")
    async with ApiClient(county.url, county.agent) as agent:
        assert (await agent.claim(int(rid)))["result"] == "won"
    await county.act(county.agent, rid, "accept", received=item["materials"])
    await county.act(county.agent, rid, "progress", note="已报县局", desk="county")
    got = await asyncio.to_thread(county.client().get_service_request, rid)
    assert got["status"] == "open" and got["agency_responsible"] == "蓝山县政务服务中心"
    assert got["status_notes"] == "代办员更新了办理进度"
    order = await county.admin.get_order(int(rid))
    assert got["expected_datetime"] == _iso(order["due_at"])
    await county.act(county.agent, rid, "reply", result="已办结")
    closed = await asyncio.to_thread(
        county.client().get_service_requests, None, None, None, None, "closed"
    )
    assert [r["service_request_id"] for r in closed] == [rid]
    assert closed[0]["status"] == "closed"


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_listing_filters(county: County) -> None:
    first = await county.file()
    second = await county.file(service_code="HJ-002", lat="", long="", address_string="凌江村")
    client = county.client()
    both = await asyncio.to_thread(client.get_service_requests, f"{first},{second}")
    assert sorted(r["service_request_id"] for r in both) == sorted([first, second])
    by_code = await asyncio.to_thread(client.get_service_requests, None, "HJ-002")
    assert [r["service_request_id"] for r in by_code] == [second]
    open_ = await asyncio.to_thread(client.get_service_requests, None, None, None, None, "open")
    assert {r["service_request_id"] for r in open_} == {first, second}
    old = await asyncio.to_thread(
        client.get_service_requests, None, None, "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"
    )
    assert old == []
    async with httpx.AsyncClient() as http:
        r = await http.get(
            county.url + "/open311/v2/requests.xml",
            params={"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-06-01T00:00:00Z"},
        )
    assert r.status_code == 400
    assert ET.fromstring(r.content).findtext("error/code") == "400"
    # Found by schemathesis: the default start (90 days before end_date) fell before year 1.
    async with httpx.AsyncClient() as http:
        for end, status in (("0001-01-01T00:00:00Z", 400), ("1970-01-01T00:00:01Z", 200)):
            r = await http.get(county.url + "/open311/v2/requests.json", params={"end_date": end})
            assert r.status_code == status, r.text


async def test_errors_are_in_the_specifications_format(county: County) -> None:
    good = {"service_code": "HJ-001", "address_string": "凌江村"}
    bad_key = await county.post(api_key="bbi_nonsense", **good)
    assert bad_key.status_code == 403
    assert bad_key.json() == [{"code": 403, "description": "forbidden: invalid api_key"}]
    missing_key = await county.post("xml", **good)
    assert missing_key.status_code == 403
    root = ET.fromstring(missing_key.content)
    assert root.tag == "errors" and root.findtext("error/code") == "403"
    # An agent token is a real token, but not one that files orders.
    as_agent = await county.post(api_key=county.agent, **good)
    assert as_agent.status_code == 403
    unknown = await county.post(
        api_key=county.intake, service_code="ZZ-999", lat="25.4", long="112.2"
    )
    assert unknown.status_code == 404 and unknown.json()[0]["code"] == 404
    nowhere = await county.post(api_key=county.intake, service_code="HJ-001")
    assert nowhere.status_code == 400 and "missing_field" in nowhere.json()[0]["description"]
    half = await county.post(api_key=county.intake, service_code="HJ-001", lat="25.4")
    assert half.status_code == 400
    attr = await county.post(api_key=county.intake, **good, **{"attribute[M9]": "yes"})
    assert attr.status_code == 400 and "M9" in attr.json()[0]["description"]
    extra = await county.post(api_key=county.intake, **good, colour="blue")
    assert extra.status_code == 400 and "unknown_field" in extra.json()[0]["description"]
    far = await county.post(api_key=county.intake, service_code="HJ-001", lat="40", long="100")
    assert far.status_code == 400 and "unroutable" in far.json()[0]["description"]
    async with httpx.AsyncClient() as http:
        in_url = await http.post(
            county.url + "/open311/v2/requests.json",
            params={"api_key": county.intake},
            data=good,
        )
        assert in_url.status_code == 400 and "form body" in in_url.json()[0]["description"]
        assert (await http.get(county.url + "/open311/v2/services.yaml")).status_code == 404
        gone = await http.get(county.url + "/open311/v2/requests/999999.json")
        assert gone.status_code == 404 and gone.json()[0]["code"] == 404
        nodef = await http.get(county.url + "/open311/v2/services/ZZ-999.xml")
        assert nodef.status_code == 404 and ET.fromstring(nodef.content).tag == "errors"


async def test_discovery(county: County) -> None:
    async with httpx.AsyncClient() as http:
        doc = (await http.get(county.url + "/open311/discovery.json")).json()
        xml_doc = await http.get(county.url + "/open311/discovery.xml")
    endpoint = doc["endpoints"][0]
    assert endpoint["url"] == county.url + "/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    root = ET.fromstring(xml_doc.content)
    assert root.tag == "discovery"
    assert root.findtext("endpoints/endpoint/url") == county.url + "/open311/v2"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]
