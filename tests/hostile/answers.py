"""Literal answers the hostile tests start from: what a healthy API would say."""

from __future__ import annotations

from typing import Any

OK_SUBMIT: dict[str, Any] = {
    "code": 200,
    "message": "",
    "data": {"id": "p1", "status": "created"},
}


def poll_body(
    prediction_id: str = "p1", status: str = "completed", **fields: Any
) -> dict[str, Any]:
    """A poll answer in the usual envelope; a completed one has one output."""
    data: dict[str, Any] = {"id": prediction_id, "status": status, **fields}
    if status == "completed":
        data.setdefault("outputs", [f"https://cdn.test/{prediction_id}.png"])
    return {"code": 200, "message": "", "data": data}


def nested(depth: int) -> bytes:
    """``depth`` nested JSON arrays."""
    return b"[" * depth + b"]" * depth
