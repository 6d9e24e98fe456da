-- Registry core: namespaces, repositories, blobs and their placements, uploads, manifests, tags, outbox.

CREATE TABLE namespaces (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repositories (
    id            bigserial PRIMARY KEY,
    namespace_id  bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    name          text NOT NULL,
    full_name     text NOT NULL UNIQUE,
    visibility    text NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'private')),
    state         text NOT NULL DEFAULT 'normal' CHECK (state IN ('normal', 'readonly', 'deleted')),
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_id, name)
);

CREATE TABLE storage_locations (
    id    serial PRIMARY KEY,
    name  text NOT NULL UNIQUE
);

-- One row per digest across the whole registry: the bytes are stored once per location.
CREATE TABLE blobs (
    id          bigserial PRIMARY KEY,
    digest      text NOT NULL UNIQUE,
    size        bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A placement means "the bytes exist at that location".
CREATE TABLE blob_placements (
    blob_id      bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    location_id  int NOT NULL REFERENCES storage_locations(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blob_id, location_id)
);

-- A repository sees only the blobs linked to it.
CREATE TABLE repository_blobs (
    repository_id  bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    blob_id        bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, blob_id)
);
CREATE INDEX repository_blobs_blob ON repository_blobs (blob_id);

CREATE TABLE upload_sessions (
    id             uuid PRIMARY KEY,
    repository_id  bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    location_id    int NOT NULL REFERENCES storage_locations(id) ON DELETE CASCADE,
    size           bigint NOT NULL DEFAULT 0,
    chunks         text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE manifests (
    id                 bigserial PRIMARY KEY,
    repository_id      bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest             text NOT NULL,
    media_type         text NOT NULL,
    artifact_type      text,
    config_media_type  text,
    subject_digest     text,
    annotations        jsonb,
    size               int NOT NULL,
    body               bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

CREATE TABLE manifest_blobs (
    manifest_id  bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    blob_id      bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    PRIMARY KEY (manifest_id, blob_id)
);
CREATE INDEX manifest_blobs_blob ON manifest_blobs (blob_id);

CREATE TABLE manifest_children (
    parent_id  bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    child_id   bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX manifest_children_child ON manifest_children (child_id);

-- Tags are never updated in place: a move ends the live row and starts a new one (history).
CREATE TABLE tags (
    id              bigserial PRIMARY KEY,
    repository_id   bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name            text NOT NULL,
    manifest_id     bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    lifetime_start  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lifetime_end    timestamptz
);
CREATE UNIQUE INDEX tags_live ON tags (repository_id, name) WHERE lifetime_end IS NULL;
CREATE INDEX tags_history ON tags (repository_id, name, lifetime_start);
CREATE INDEX tags_manifest ON tags (manifest_id) WHERE lifetime_end IS NULL;

-- Events written in the same transaction as the change; published after commit, relayed if not.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    msg_id      text NOT NULL UNIQUE,
    subject     text NOT NULL,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    int NOT NULL DEFAULT 0
);
CREATE INDEX outbox_created ON outbox (created_at);
