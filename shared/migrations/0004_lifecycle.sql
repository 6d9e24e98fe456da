-- Tag lifecycle and garbage collection: tag expiry, restores, labels, and the blobs gc must look at.

-- expires_at: the live row stops being served at that moment (set at push by quay.expires-after, or
-- through the API); reversion: the row was made by a restore; time_machine_expired: the row was
-- expired permanently and may not be restored, so gc may collect it at once.
ALTER TABLE tags
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN reversion boolean NOT NULL DEFAULT false,
    ADD COLUMN time_machine_expired boolean NOT NULL DEFAULT false;
CREATE INDEX tags_recent ON tags (repository_id, lifetime_start DESC, id DESC);
CREATE INDEX tags_ended ON tags (repository_id, lifetime_end) WHERE lifetime_end IS NOT NULL;
CREATE INDEX tags_expiring ON tags (expires_at) WHERE lifetime_end IS NULL AND expires_at IS NOT NULL;
CREATE INDEX tags_manifest_any ON tags (manifest_id);

CREATE TABLE labels (
    id           uuid PRIMARY KEY,
    manifest_id  bigint NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    key          text NOT NULL,
    value        text NOT NULL,
    media_type   text NOT NULL DEFAULT 'text/plain',
    source_type  text NOT NULL CHECK (source_type IN ('manifest', 'api')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX labels_manifest ON labels (manifest_id);

-- Blobs that lost a reference (unlinked from a repository, or their repository purged): the only
-- blobs the global sweep needs to look at, so it never scans the whole blobs table.
CREATE TABLE gc_blob_candidates (
    blob_id  bigint PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
    since    timestamptz NOT NULL DEFAULT now()
);

-- Repositories and namespaces that something changed in since gc last looked (tags ended or
-- expired, manifests deleted); gc also walks every repository now and then.
CREATE INDEX repositories_deleted ON repositories (id) WHERE state = 'deleted';
CREATE INDEX namespaces_deleted ON namespaces (id) WHERE deleted_at IS NOT NULL;
CREATE INDEX manifests_created ON manifests (repository_id, created_at);
CREATE INDEX upload_sessions_updated ON upload_sessions (updated_at);
