import { Breadcrumb, BreadcrumbItem, Bullseye, PageSection, Spinner, Tab, Tabs, TabTitleText, Title } from "@patternfly/react-core";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams, useSearchParams } from "react-router-dom";

import { NotificationsPanel } from "../components/notifications/NotificationsPanel";
import { QuotaPanel } from "../components/quota/QuotaPanel";
import { api, ApiError } from "../lib/api";
import { useSession } from "../session";
import NotFound from "./NotFound";

const TABS = ["notifications", "quota"] as const;

/** An organisation's settings that notifications and quotas add: Notifications (for every repository
 * of the organisation) and Quota. Its tabs are self-contained panels, so the organisation page of
 * the UI's second part can take them in as they are. */
export default function OrganizationSettings() {
  const name = useParams()["name"] ?? "";
  const { config, readOnly } = useSession();
  const [params, setParams] = useSearchParams();
  const quotaOn = !!config.features.QUOTA_MANAGEMENT;
  const tabs = TABS.filter((t) => t !== "quota" || quotaOn);
  const tab = tabs.find((t) => t === params.get("tab")) ?? tabs[0];
  const org = useQuery({
    queryKey: ["organization", name],
    queryFn: () => api.get<{ name: string; is_admin: boolean; is_member: boolean }>(`/organization/${encodeURIComponent(name)}`),
  });
  if (org.error) {
    if (org.error instanceof ApiError && org.error.status === 404) return <NotFound what={`Organisation ${name}`} />;
    return <PageSection>{(org.error as Error).message}</PageSection>;
  }
  if (!org.data) {
    return (
      <Bullseye>
        <Spinner aria-label="Loading organisation" />
      </Bullseye>
    );
  }
  const admin = org.data.is_admin && !readOnly;
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem render={() => <Link to="/organization">Organisations</Link>} />
          <BreadcrumbItem render={() => <Link to={`/repository?namespace=${encodeURIComponent(name)}`}>{name}</Link>} />
          <BreadcrumbItem isActive>Settings</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">{name}: settings</Title>
      </PageSection>
      <PageSection>
        <Tabs activeKey={tab} onSelect={(_e, key) => setParams({ tab: String(key) })} aria-label="Organisation settings"
              mountOnEnter unmountOnExit>
          <Tab eventKey="notifications" title={<TabTitleText>Notifications</TabTitleText>}>
            <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
              {admin ? (
                <NotificationsPanel base={`/organization/${encodeURIComponent(name)}/notifications`} scope={`every repository of ${name}`} />
              ) : (
                <p>Only administrators of {name} see and change its notifications.</p>
              )}
            </PageSection>
          </Tab>
          {quotaOn ? (
            <Tab eventKey="quota" title={<TabTitleText>Quota</TabTitleText>}>
              <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
                <QuotaPanel organization={name} canEdit={admin} />
              </PageSection>
            </Tab>
          ) : null}
        </Tabs>
      </PageSection>
    </>
  );
}
