-- Failed-login throttling (docs/identity.md "Failed sign-ins"): one row per throttled key — a user
-- name (`user:<name>`) or a client address (`ip:<address>`, IPv6 by /64) — shared by every gateway
-- of every region. `failures` counts failed checks since the window restarted; `locked_until` is set
-- once the free attempts are used up. Rows whose last failure is older than the window are deleted.
CREATE TABLE login_throttle (
    key           text PRIMARY KEY CHECK (length(key) <= 300),
    failures      integer NOT NULL,
    last_failure  timestamptz NOT NULL,
    locked_until  timestamptz
);
CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure);
