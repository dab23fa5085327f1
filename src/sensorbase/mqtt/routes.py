"""`GET /v1/mqtt/errors`: the organisation's recently refused MQTT messages (this server
process's; every process also publishes each refusal on `<prefix>/<org>/$errors`)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import catalog_of
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router

router = native_router()


@router.get("/mqtt/errors", summary="Recently refused MQTT messages", tags=["mqtt"])
async def mqtt_errors(
    request: Request,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    access.require(who, "data:read")
    access.require_whole_org(who, "MQTT errors")
    org = await catalog.orgs.mine(who)
    bridge = getattr(request.scope["app"], "mqtt", None)
    refusals = bridge.refusals.recent(org.key) if bridge is not None else []
    return {"enabled": bridge is not None, "errors": [r.as_dict() for r in refusals]}
