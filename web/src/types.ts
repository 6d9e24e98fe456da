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
