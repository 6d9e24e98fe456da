"""The OCI error model, built in one place.

Handlers raise `RegistryError`; the gateway middleware turns it into
`{"errors":[{"code":...,"message":...,"detail":...}]}` with the right status.
"""
from __future__ import annotations

from typing import Any

import msgspec

from shared.codec import encode_json

# code -> (HTTP status, default message), from the distribution spec's error table.
OCI_CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (404, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    # Distribution's code for "a dependency is down": clients retry after Retry-After.
    "UNAVAILABLE": (503, "service unavailable"),
}
RETRY_AFTER_S = 5

READ_ONLY_MESSAGE = (
    "System is currently read-only. Pulls will succeed but all write operations are currently suspended."
)


class ErrorEntry(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    detail: Any = None


class ErrorBody(msgspec.Struct):
    errors: list[ErrorEntry]


class RegistryError(Exception):
    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_status, default_message = OCI_CODES[code]
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    def body(self) -> bytes:
        return encode_json(ErrorBody([ErrorEntry(self.code, self.message, self.detail)]))


def unavailable_error(what: str) -> RegistryError:
    """503 with Retry-After: a dependency (the database, a storage location, the bus) is down right
    now; nothing was changed, and the same request will work once it is back."""
    return RegistryError("UNAVAILABLE", f"{what} is unavailable right now; retry shortly", status=503,
                         headers={"Retry-After": str(RETRY_AFTER_S)})


def read_only_error() -> RegistryError:
    return RegistryError("DENIED", READ_ONLY_MESSAGE, status=405)


PUSHES_DISABLED_MESSAGE = (
    "Pushes to the registry are currently disabled. Please contact the administrator for more information."
)


def pushes_disabled_error() -> RegistryError:
    return RegistryError("DENIED", PUSHES_DISABLED_MESSAGE, status=405)


def repository_read_only_error(name: str) -> RegistryError:
    return RegistryError("DENIED", f"Repository {name} is read-only: pulls work, pushes and deletes are refused "
                                   "until an administrator sets it back to NORMAL", status=405)


def still_referenced_error(kind: str, digest: str, by: list[str]) -> RegistryError:
    """A delete refused because it would break an image that can still be pulled (docs/decisions.md,
    "Deletes never break a pullable image"): 409, naming what still uses it and what to do first."""
    users = ", ".join(by[:5]) + (f" and {len(by) - 5} more" if len(by) > 5 else "")
    if kind == "manifest":
        message = (f"manifest {digest} is listed by index {users} in this repository; delete the index first "
                   "(deleting the child would leave an index that can no longer be pulled)")
    else:
        message = (f"blob {digest} is used by manifest {users} in this repository; delete the manifest first "
                   "(deleting the blob would leave an image that can no longer be pulled)")
    return RegistryError("DENIED", message, detail={"digest": digest, "referenced_by": by[:5]}, status=409)


class ApiError(Exception):
    """A /api/v1 error: JSON in Quay's shape `{"status", "error_message", "title", "error_type", "detail"}`."""

    def __init__(self, status: int, message: str, *, error_type: str = "invalid_request", detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.detail = detail
        self.headers = headers or {}  # e.g. Retry-After of a 429

    def body(self) -> bytes:
        return encode_json({
            "status": self.status,
            "error_message": self.message,
            "title": self.error_type,
            "error_type": self.error_type,
            "detail": self.detail if self.detail is not None else self.message,
            "type": f"/api/v1/error/{self.error_type}",
        })
