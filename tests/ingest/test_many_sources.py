"""A write that names a fleet: many sources at once, new and known mixed, resolved (and the new
ones created) in a few statements per `_IDS_PER_QUERY` keys rather than five per source, on
both backends."""

from __future__ import annotations

import httpx

from tests.conftest import Org

DEVICES = 1_203  # more than two statements' worth of keys (catalog_queries._IDS_PER_QUERY)


def fleet(devices: range, time_s: int) -> list[dict[str, object]]:
    return [
        {"source": f"dev{d:05d}", "field": "t", "time": time_s, "value": d / 10} for d in devices
    ]


async def test_a_write_creates_every_new_source_of_a_fleet_and_finds_the_known_ones(
    client: httpx.AsyncClient, org: Org
) -> None:
    url = f"/v1/write?bucket={org.bucket}&precision=s"
    reply = await client.post(url, json=fleet(range(DEVICES), 1_700_000_000), headers=org.headers)
    assert reply.status_code == 200, reply.text
    # The known ones with 5 new ones between them, in another order.
    again = fleet(range(DEVICES + 5), 1_700_000_060)[::-1]
    reply = await client.post(url, json=again, headers=org.headers)
    assert reply.status_code == 200, reply.text
    stats = (await client.get(f"/v1/buckets/{org.bucket}", headers=org.headers)).json()["stats"]
    assert (stats["sources"], stats["points"]) == (DEVICES + 5, 2 * DEVICES + 5)
    for d in (0, 499, 500, DEVICES - 1, DEVICES + 4):
        reply = await client.get(
            f"/v1/query?bucket={org.bucket}&source=dev{d:05d}&field=t&limit=10",
            headers=org.headers,
        )
        assert reply.status_code == 200, reply.text
        points = reply.json()["series"][0]["points"]
        assert [p["value"] for p in points] == [d / 10] * (2 if d < DEVICES else 1)


async def test_a_fleet_of_names_not_only_ascii_written_again_finds_its_series(
    client: httpx.AsyncClient, org: Org
) -> None:
    """A body of many series hands the pipeline its keys as names (dialects/native/_columns.c,
    `Keys`): a second write of the same fleet (every series cached, found by the names' bytes
    and hashes) lands on the series the first created, names with accents or not."""
    names = [f"capteur-{d}" + ("-é" if d % 2 else "") for d in range(300)]

    def body(time_s: int) -> dict[str, object]:
        points = [{"source": s, "field": "température", "time": time_s, "value": d}
                  for d, s in enumerate(names)]  # fmt: skip
        return {"bucket": org.bucket, "points": points}

    for time_s in (1_700_000_000, 1_700_000_060):
        reply = await client.post("/v1/write?precision=s", json=body(time_s), headers=org.headers)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"written": 300, "series": 300}
    stats = (await client.get(f"/v1/buckets/{org.bucket}", headers=org.headers)).json()["stats"]
    assert (stats["sources"], stats["points"]) == (300, 600)
    for d in (0, 1, 299):
        reply = await client.get(
            "/v1/query", params={"bucket": org.bucket, "source": names[d], "field": "température"},
            headers=org.headers,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        assert [p["value"] for p in reply.json()["series"][0]["points"]] == [d, d]
