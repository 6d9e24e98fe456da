import { Breadcrumb, BreadcrumbItem, Bullseye, Label, PageSection, Spinner, Tab, Tabs, TabTitleText, Title, Tooltip } from "@patternfly/react-core";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams, useSearchParams } from "react-router-dom";

import { LogsView } from "../components/LogsView";
import { api, ApiError } from "../lib/api";
import { settingsClosedReason } from "../lib/orgSettings";
import { useSession } from "../session";
import type { Organization } from "../types";
import NotFound from "./NotFound";
import { DefaultPermissionsTab } from "./organization/DefaultPermissionsTab";
import { RobotsTab } from "./organization/RobotsTab";
import { OrganizationSettingsTab } from "./organization/SettingsTab";
import { TeamsTab } from "./organization/TeamsTab";
import { RepositoriesView } from "./RepositoriesList";

const TABS = ["repositories", "teams", "robots", "defaults", "logs", "settings"] as const;
type TabKey = (typeof TABS)[number];

export function organizationQuery(org: string) {
  return { queryKey: ["organization", org], queryFn: () => api.get<Organization>(`/organization/${encodeURIComponent(org)}`) };
}

export default function OrganizationPage() {
  const org = useParams().org ?? "";
  const { user, readOnly } = useSession();
  const [params, setParams] = useSearchParams();
  const tab = (TABS.find((t) => t === params.get("tab")) ?? "repositories") as TabKey;
  const found = useQuery(organizationQuery(org));
  if (found.error) {
    if (found.error instanceof ApiError && found.error.status === 404) return <NotFound what={`Organisation ${org}`} />;
    return <PageSection>{(found.error as Error).message}</PageSection>;
  }
  if (!found.data) return <Bullseye><Spinner aria-label="Loading organisation" /></Bullseye>;
  const data = found.data;
  const member = !!user && data.is_member;
  const admin = !!user && data.is_admin;
  // What each tab needs, and why it is closed otherwise: the same rights the API checks.
  const closed: Record<TabKey, string | null> = {
    repositories: null,
    teams: member ? null : `Only members of ${org} can see its teams`,
    robots: admin ? null : `Only administrators of ${org} can manage its robot accounts`,
    defaults: admin ? null : `Only administrators of ${org} can manage its default permissions`,
    logs: admin ? null : `Only administrators of ${org} can read its usage logs`,
    settings: settingsClosedReason(org, admin, readOnly),
  };
  const active = closed[tab] ? "repositories" : tab;
  const titles: Record<TabKey, string> = {
    repositories: "Repositories", teams: "Teams and membership", robots: "Robot accounts", defaults: "Default permissions",
    logs: "Usage logs", settings: "Settings",
  };
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem render={() => <Link to="/organization">Organisations</Link>} />
          <BreadcrumbItem isActive>{org}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">
          {org}{" "}
          {admin ? <Label isCompact color="purple">Administrator</Label> : member ? <Label isCompact>Member</Label> : null}
        </Title>
      </PageSection>
      <PageSection>
        <Tabs
          activeKey={active}
          onSelect={(_e, key) => setParams(key === "repositories" ? {} : { tab: String(key) })}
          aria-label="Organisation sections"
          mountOnEnter
          unmountOnExit
        >
          {TABS.map((key) => (
            <Tab
              key={key}
              eventKey={key}
              title={<TabTitleText>{titles[key]}</TabTitleText>}
              isAriaDisabled={!!closed[key]}
              tooltip={closed[key] ? <Tooltip content={closed[key]} /> : undefined}
              data-testid={`tab-${key}`}
            >
              <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
                {key === "repositories" ? <RepositoriesView namespace={org} /> : null}
                {key === "teams" ? <TeamsTab org={org} isAdmin={admin} /> : null}
                {key === "robots" ? <RobotsTab org={org} /> : null}
                {key === "defaults" ? <DefaultPermissionsTab org={org} /> : null}
                {key === "logs" ? <LogsView scope={{ kind: "organization", name: org }} /> : null}
                {key === "settings" ? (
                  <OrganizationSettingsTab org={org} organization={data} section={params.get("section")}
                                           onSection={(section) => setParams(section === "general" ? { tab: "settings" } : { tab: "settings", section })} />
                ) : null}
              </PageSection>
            </Tab>
          ))}
        </Tabs>
      </PageSection>
    </>
  );
}
