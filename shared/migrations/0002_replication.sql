-- Geo-replication: per-namespace target locations and a record of copies that gave up.

CREATE TABLE namespace_replication (
    namespace_id  bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    location_id   int NOT NULL REFERENCES storage_locations(id) ON DELETE CASCADE,
    PRIMARY KEY (namespace_id, location_id)
);

CREATE TABLE replication_failures (
    id          bigserial PRIMARY KEY,
    digest      text NOT NULL,
    location    text NOT NULL,
    error       text NOT NULL,
    deliveries  int NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replication_failures_location ON replication_failures (location, failed_at);
