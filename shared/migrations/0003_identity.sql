-- Identity and access: users, robots, organisations (namespaces), teams, permissions, default
-- permissions, API tokens, service keys, usage logs and their exports.

CREATE TABLE users (
    id                  bigserial PRIMARY KEY,
    username            text NOT NULL UNIQUE,
    email               text,
    password_hash       text,                 -- argon2id; NULL for robots
    -- A robot belongs to a namespace and signs in with a random token (stored as sha256).
    robot_namespace_id  bigint REFERENCES namespaces(id) ON DELETE CASCADE,
    robot_token_hash    text,
    description         text NOT NULL DEFAULT '',
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_accessed       timestamptz,
    CHECK ((robot_namespace_id IS NULL) = (robot_token_hash IS NULL))
);

-- A namespace is an organisation or a user's own namespace (same name as the user).
ALTER TABLE namespaces
    ADD COLUMN kind text NOT NULL DEFAULT 'organization' CHECK (kind IN ('organization', 'user')),
    ADD COLUMN owner_user_id bigint REFERENCES users(id) ON DELETE CASCADE,
    ADD COLUMN email text,
    ADD COLUMN tag_expiration_s bigint,
    ADD COLUMN deleted_at timestamptz;

CREATE TABLE teams (
    id            bigserial PRIMARY KEY,
    namespace_id  bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('member', 'creator', 'admin')),
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_id, name)
);

CREATE TABLE team_members (
    team_id  bigint NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE repository_permissions (
    id             bigserial PRIMARY KEY,
    repository_id  bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    user_id        bigint REFERENCES users(id) ON DELETE CASCADE,
    team_id        bigint REFERENCES teams(id) ON DELETE CASCADE,
    role           text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX repository_permissions_user ON repository_permissions (repository_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX repository_permissions_team ON repository_permissions (repository_id, team_id) WHERE team_id IS NOT NULL;
CREATE INDEX repository_permissions_by_user ON repository_permissions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX repository_permissions_by_team ON repository_permissions (team_id) WHERE team_id IS NOT NULL;

-- "When <activating user, or anyone> creates a repository in this namespace, grant <delegate> <role>."
CREATE TABLE default_permissions (
    id                  uuid PRIMARY KEY,
    namespace_id        bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    activating_user_id  bigint REFERENCES users(id) ON DELETE CASCADE,
    delegate_user_id    bigint REFERENCES users(id) ON DELETE CASCADE,
    delegate_team_id    bigint REFERENCES teams(id) ON DELETE CASCADE,
    role                text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    CHECK ((delegate_user_id IS NULL) <> (delegate_team_id IS NULL))
);
CREATE INDEX default_permissions_namespace ON default_permissions (namespace_id);

-- Session cookies and bearer tokens for the API, stored as sha256 of a random secret.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    token_hash    text NOT NULL UNIQUE,
    user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('session', 'bearer')),
    title         text NOT NULL DEFAULT '',
    csrf_token    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used     timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Public halves of the keys that sign registry tokens; the private halves never leave their process
-- (or the operator's key file in read-only mode).
CREATE TABLE service_keys (
    kid            text PRIMARY KEY,
    name           text NOT NULL,
    service        text NOT NULL,
    jwk            jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    approved_at    timestamptz,
    approval_type  text,
    approved_by    text
);

CREATE TABLE audit_logs (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    namespace_id    bigint,
    namespace       text,
    repository_id   bigint,
    repository      text,
    performer_id    bigint,
    performer       text,
    ip              text,
    metadata        jsonb NOT NULL DEFAULT '{}',
    datetime        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_logs_namespace ON audit_logs (namespace_id, datetime);
CREATE INDEX audit_logs_repository ON audit_logs (repository_id, datetime);
CREATE INDEX audit_logs_performer ON audit_logs (performer_id, datetime) WHERE performer_id IS NOT NULL;

CREATE TABLE log_exports (
    id              uuid PRIMARY KEY,
    requested_by    bigint REFERENCES users(id) ON DELETE SET NULL,
    scope_kind      text NOT NULL CHECK (scope_kind IN ('organization', 'repository', 'user')),
    scope_id        bigint NOT NULL,
    starttime       timestamptz NOT NULL,
    endtime         timestamptz NOT NULL,
    callback_url    text,
    callback_email  text,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    claimed_at      timestamptz,
    path            text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
