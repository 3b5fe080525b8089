"""Plain HTTP to a model server on 127.0.0.1, with every header under the test's control
(a forged Host, an Origin, a Content-Type a web form would send)."""

from __future__ import annotations

import http.client
import json
from typing import Any


def call(url: str, method: str, path: str, body: Any = None, *,
         content_type: str | None = "application/json", headers: dict | None = None,
         timeout: float = 30) -> tuple[int, dict, Any]:
    """One request on a fresh connection: ``(status, headers, JSON or text)``."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    sent = dict(headers or {})
    if body is not None and content_type is not None:
        sent.setdefault("Content-Type", content_type)
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    try:
        data = json.loads(data)
    except ValueError:
        pass
    return response.status, dict(response.getheaders()), data


def records(rows) -> dict:
    """A ``dataframe_records`` payload of a DataFrame's rows."""
    return {"dataframe_records": rows.to_dict(orient="records")}
