-- Repository and organisation notifications (webhook, Slack, e-mail) with their delivery history,
-- and exact storage quotas (docs/quotas.md).

-- Quota accounting. A manifest is *counted* while its repository is live and it is pinned (stored by a
-- push and not referenced by anything yet: a push by digest) or referenced (quota_refs: its current
-- tag rows, plus the counted manifests that list it as a child or that it names as its subject).
-- A namespace's usage is the total size of the distinct blobs its counted manifests list; a
-- repository's the same within it. shared/registry/quota.py keeps all of it in the transaction of
-- every change; `meridian quota check` recomputes it from scratch (quota_expected_counted).
ALTER TABLE manifests
    ADD COLUMN quota_refs integer NOT NULL DEFAULT 0,
    ADD COLUMN quota_pinned boolean NOT NULL DEFAULT false,
    ADD COLUMN quota_counted boolean NOT NULL DEFAULT false;

-- One row per namespace; its row lock orders every change of the namespace's usage (so two pushes
-- near the limit cannot both pass). reject_notified: a refusal was announced (quota_error) and
-- usage has not changed since.
CREATE TABLE namespace_usage (
    namespace_id     bigint PRIMARY KEY REFERENCES namespaces(id) ON DELETE CASCADE,
    size_bytes       bigint NOT NULL DEFAULT 0,
    reject_notified  boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repository_usage (
    repository_id  bigint PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    size_bytes     bigint NOT NULL DEFAULT 0
);

-- How many counted manifests of the namespace (of the repository) list each blob: a blob adds its
-- size when its count becomes 1 and takes it away when the count returns to 0.
CREATE TABLE quota_namespace_blobs (
    namespace_id  bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    blob_id       bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    refs          integer NOT NULL,
    PRIMARY KEY (namespace_id, blob_id)
);

CREATE TABLE quota_repository_blobs (
    repository_id  bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    blob_id        bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    refs           integer NOT NULL,
    PRIMARY KEY (repository_id, blob_id)
);

-- Quay's quota shape: one quota per namespace, with Warning and Reject limits in percent of it.
CREATE TABLE namespace_quotas (
    id            bigserial PRIMARY KEY,
    namespace_id  bigint NOT NULL UNIQUE REFERENCES namespaces(id) ON DELETE CASCADE,
    limit_bytes   bigint NOT NULL CHECK (limit_bytes > 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- tripped: a Warning limit whose threshold usage has crossed (its quota_warning was sent); cleared
-- when usage falls below it again, so the next crossing warns again.
CREATE TABLE namespace_quota_limits (
    id        bigserial PRIMARY KEY,
    quota_id  bigint NOT NULL REFERENCES namespace_quotas(id) ON DELETE CASCADE,
    kind      text NOT NULL CHECK (kind IN ('Warning', 'Reject')),
    percent   integer NOT NULL CHECK (percent BETWEEN 1 AND 100),
    tripped   boolean NOT NULL DEFAULT false,
    UNIQUE (quota_id, kind, percent)
);
CREATE UNIQUE INDEX namespace_quota_one_reject ON namespace_quota_limits (quota_id) WHERE kind = 'Reject';

-- What the counted manifests must be, from scratch: the seeds (pinned, or with a current tag row) in
-- live repositories, and everything their children and referrer edges reach.
CREATE VIEW quota_expected_counted AS
WITH RECURSIVE edges (src, dst) AS (
    SELECT parent_id, child_id FROM manifest_children
    UNION ALL
    SELECT s.id, r.id FROM manifests r
    JOIN manifests s ON s.repository_id = r.repository_id AND s.digest = r.subject_digest
    WHERE r.subject_digest IS NOT NULL
), counted (id) AS (
    SELECT m.id FROM manifests m JOIN repositories p ON p.id = m.repository_id
    WHERE p.state <> 'deleted'
      AND (m.quota_pinned OR EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id AND t.lifetime_end IS NULL))
    UNION
    SELECT e.dst FROM edges e JOIN counted c ON c.id = e.src
)
SELECT id AS manifest_id FROM counted;

-- Backfill for registries that existed before: a manifest nothing ever referenced is pinned (it was
-- pushed by digest); then the counted set, the references, the blob counts and the usage.
UPDATE manifests m SET quota_pinned = true
WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
  AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.child_id = m.id)
  AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest);
UPDATE manifests m SET quota_counted = true FROM quota_expected_counted e WHERE e.manifest_id = m.id;
UPDATE manifests m SET quota_refs =
    (SELECT count(*) FROM tags t WHERE t.manifest_id = m.id AND t.lifetime_end IS NULL)
  + (SELECT count(*) FROM manifest_children c JOIN manifests p ON p.id = c.parent_id WHERE c.child_id = m.id AND p.quota_counted)
  + (SELECT count(*) FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest AND s.quota_counted);
INSERT INTO quota_namespace_blobs (namespace_id, blob_id, refs)
SELECT r.namespace_id, mb.blob_id, count(*) FROM manifests m JOIN repositories r ON r.id = m.repository_id
JOIN manifest_blobs mb ON mb.manifest_id = m.id WHERE m.quota_counted GROUP BY r.namespace_id, mb.blob_id;
INSERT INTO quota_repository_blobs (repository_id, blob_id, refs)
SELECT m.repository_id, mb.blob_id, count(*) FROM manifests m JOIN manifest_blobs mb ON mb.manifest_id = m.id
WHERE m.quota_counted GROUP BY m.repository_id, mb.blob_id;
INSERT INTO namespace_usage (namespace_id, size_bytes)
SELECT n.id, coalesce((SELECT sum(b.size) FROM quota_namespace_blobs q JOIN blobs b ON b.id = q.blob_id
                       WHERE q.namespace_id = n.id), 0)
FROM namespaces n;
INSERT INTO repository_usage (repository_id, size_bytes)
SELECT r.id, coalesce((SELECT sum(b.size) FROM quota_repository_blobs q JOIN blobs b ON b.id = q.blob_id
                       WHERE q.repository_id = r.id), 0)
FROM repositories r;

-- Notifications: per repository, or (repository_id NULL) for every repository of a namespace.
-- secret: the HMAC-SHA256 key of the signature header; shown to admins (receivers need it).
CREATE TABLE notifications (
    id                  bigserial PRIMARY KEY,
    uuid                uuid NOT NULL UNIQUE,
    namespace_id        bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    repository_id       bigint REFERENCES repositories(id) ON DELETE CASCADE,
    event               text NOT NULL,
    method              text NOT NULL,
    title               text NOT NULL DEFAULT '',
    config              jsonb NOT NULL DEFAULT '{}',
    event_config        jsonb NOT NULL DEFAULT '{}',
    secret              text NOT NULL,
    number_of_failures  integer NOT NULL DEFAULT 0,
    disabled_at         timestamptz,
    disabled_reason     text,
    created_by          bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_repository ON notifications (repository_id, event) WHERE repository_id IS NOT NULL;
CREATE INDEX notifications_namespace ON notifications (namespace_id, event) WHERE repository_id IS NULL;

-- Every delivery attempt (and every test), newest kept per notification.
CREATE TABLE notification_deliveries (
    id               bigserial PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    event_id         text NOT NULL,
    event            text NOT NULL,
    attempt          integer NOT NULL,
    ok               boolean NOT NULL,
    status_code      integer,
    duration_ms      integer,
    error            text,
    test             boolean NOT NULL DEFAULT false,
    at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX notification_deliveries_recent ON notification_deliveries (notification_id, id DESC);
CREATE INDEX notification_deliveries_done ON notification_deliveries (notification_id, event_id) WHERE ok;

-- repo_image_expiry: which tag rows a notification already announced.
CREATE TABLE notification_expiry_sent (
    notification_id  bigint NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    tag_id           bigint NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (notification_id, tag_id)
);
CREATE INDEX notification_expiry_sent_tag ON notification_expiry_sent (tag_id);
