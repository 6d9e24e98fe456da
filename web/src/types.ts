// Shapes of the /api/v1 and /config answers the UI reads.
export interface UiConfig {
  config: {
    REGISTRY_TITLE: string;
    REGISTRY_TITLE_SHORT: string;
    BRANDING: { logo?: string; footer_img?: string; footer_url?: string } | null;
    SERVER_HOSTNAME: string;
    PREFERRED_URL_SCHEME: string;
    TAG_EXPIRATION_OPTIONS: string[];
  };
  features: Record<string, boolean>;
  registry_state: string;
  pushes_disabled: boolean;
  read_only_message: string | null;
}

export interface SessionUser {
  username: string;
  super_user: boolean;
  is_robot: boolean;
  creatable_namespaces: { name: string; kind: "user" | "organization" }[];
}

export interface SessionInfo {
  user: SessionUser | null;
  csrf_token: string | null;
  anonymous_access: boolean;
}

export interface RepositoryRow {
  namespace: string;
  name: string;
  is_public: boolean;
  state: "NORMAL" | "READ_ONLY";
  description: string;
  last_modified: string | null;
  size: number;
  can_write: boolean;
  can_admin: boolean;
}

export interface Paged {
  total: number;
  page: number;
  limit: number;
  has_additional: boolean;
}

export interface Platform {
  digest: string;
  size: number | null;
  media_type: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  artifact_type: string | null;
}

export interface TagRow {
  name: string;
  manifest_digest: string;
  media_type: string;
  is_manifest_list: boolean;
  artifact_type: string | null;
  size: number | null;
  last_modified: string;
  expiration: string | null;
  regions: string[];
  platforms: Platform[];
  referrers: Record<string, number>;
  security: { status: string };
}

export interface Repository {
  namespace: string;
  name: string;
  description: string;
  is_public: boolean;
  state: "NORMAL" | "READ_ONLY";
  can_write: boolean;
  can_admin: boolean;
  created: string;
}

export interface TagDetail {
  name: string;
  repository: string;
  manifest_digest: string;
  is_manifest_list: boolean;
  size: number;
  created: string;
  modified: string;
  expiration: string | null;
  labels: { id: string; key: string; value: string; source_type: string; media_type: string }[];
  pull_commands: Record<string, string>;
}

export interface ManifestDetail {
  digest: string;
  media_type: string;
  artifact_type: string | null;
  config_media_type: string | null;
  is_manifest_list: boolean;
  created: string;
  size: number | null;
  annotations: Record<string, string> | null;
  config: { digest: string; size: number; media_type: string } | null;
  layers: { digest: string; size: number; media_type: string; annotations: Record<string, string> | null }[];
  platforms: Platform[];
  regions: string[];
  locations: string[];
  tags: string[];
  referrers: {
    artifact_type: string;
    manifests: { digest: string; media_type: string; size: number; created: string; annotations: Record<string, string> | null; tags: string[] }[];
  }[];
}

export interface HistoryRow {
  name: string;
  reversion: boolean;
  manifest_digest: string;
  is_manifest_list: boolean;
  size: number;
  start_ts: number;
  end_ts: number | null;
  last_modified: string;
  expiration: string | null;
  is_live: boolean;
}

// Organisations, teams, robots and the superuser pages.
export type RepoRole = "read" | "write" | "admin";
export type TeamRole = "member" | "creator" | "admin";

export interface OrganizationRow {
  name: string;
  email: string | null;
  created: string;
  repositories: number;
  teams: number;
  members: number;
  robots: number | null; // null unless an administrator of the organisation
  last_modified: string | null;
  size: number;
  is_admin: boolean;
}

export interface Organization {
  name: string;
  is_member: boolean;
  is_admin: boolean;
  email?: string | null;
  created?: string;
  tag_expiration_s?: number;
  tag_expiration_options_s?: number[];
  teams?: Record<string, { name: string; role: TeamRole; description: string; member_count: number }>;
}

export interface RobotRow {
  name: string;
  description: string;
  created: string;
  last_accessed: string | null;
  teams: { name: string }[];
  repositories: number;
}

export interface TeamRow {
  name: string;
  role: TeamRole;
  description: string;
  members: number;
  repositories: number;
}

export interface MemberRow {
  name: string;
  kind: "user" | "robot";
  teams?: { name: string }[];
  repositories?: number;
}

export interface RepositoryRoleRow {
  name: string;
  short_name: string;
  is_public: boolean;
  role: RepoRole | null;
}

export interface Prototype {
  id: string;
  role: RepoRole;
  delegate: { name: string; kind: "user" | "team" };
  activating_user: { name: string } | null;
}

export interface Entity {
  name: string;
  kind: "user" | "robot" | "team";
}

export interface UserRow {
  username: string;
  email: string | null;
  enabled: boolean;
  created: string;
  super_user: boolean;
}

export interface ServiceKey {
  kid: string;
  name: string;
  service: string;
  created: string;
  expires: string | null;
  approved: boolean;
  approval_type: string | null;
  approved_by: string | null;
}

export interface RegistryStatus {
  state: string;
  read_only: boolean;
  pushes_disabled: boolean;
  read_only_message: string | null;
  region: string;
  signing_key: { kid: string | null; pre_provisioned: boolean };
  read_only_keys: { kid: string; name: string; expires: string | null }[];
  unapproved_keys: number;
  ready_for_read_only: boolean;
  next_step: string;
}

export interface SearchResults {
  query: string;
  page: number;
  limit: number;
  has_additional: Partial<Record<"repositories" | "tags" | "digests", boolean>>;
  repositories?: { name: string; namespace: string; short_name: string; is_public: boolean; description: string; last_modified: string | null }[];
  tags?: { repository: string; name: string; manifest_digest: string; last_modified: string }[];
  digests?: { repository: string; digest: string; media_type: string; artifact_type: string | null; created: string; tags: string[] }[];
}
