import { Breadcrumb, BreadcrumbItem, Bullseye, Label, PageSection, Spinner, Tab, Tabs, TabTitleText, Title } from "@patternfly/react-core";
import { useQuery } from "@tanstack/react-query";
import { useRef } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";

import { LogsView } from "../components/LogsView";
import { ApiError } from "../lib/api";
import { repositoryQueryOptions, tagListState, tagsQuery, tagsQueryOptions, urlFilter } from "../lib/tagsQuery";
import { useSession } from "../session";
import NotFound from "./NotFound";
import { HistoryTab } from "./repository/HistoryTab";
import { InformationTab } from "./repository/InformationTab";
import { SettingsTab } from "./repository/SettingsTab";
import { TagsTab } from "./repository/TagsTab";

const TABS = ["information", "tags", "history", "logs", "settings"] as const;
type TabKey = (typeof TABS)[number];

export default function RepositoryPage() {
  const repository = (useParams()["*"] ?? "").replace(/\/+$/, "");
  const { user, readOnly } = useSession();
  const [params, setParams] = useSearchParams();
  const tab = (TABS.find((t) => t === params.get("tab")) ?? "information") as TabKey;
  // The Tags tab's first call starts now, beside the repository's, not after it.
  const firstTags = useQuery({ ...tagsQueryOptions(repository, tagsQuery(urlFilter(params), tagListState(params))), enabled: tab === "tags", staleTime: 15_000 });
  const repo = useQuery(repositoryQueryOptions(repository));
  const shown = useRef(false);
  if (repo.error) {
    if (repo.error instanceof ApiError && repo.error.status === 404) return <NotFound what={`Repository ${repository}`} />;
    return <PageSection>{(repo.error as Error).message}</PageSection>;
  }
  // Opened on the Tags tab, the page waits for its first page of tags too (the tab shows its own error
  // if that call fails): one render, style and layout pass for the whole page instead of two. Only the
  // first time: later tab switches, sorts and pages keep the page and let the tab show its progress.
  const waitForTags = !shown.current && tab === "tags" && firstTags.isPending && firstTags.fetchStatus === "fetching";
  if (!repo.data || waitForTags) {
    return (
      <Bullseye>
        <Spinner aria-label="Loading repository" />
      </Bullseye>
    );
  }
  shown.current = true;
  const data = repo.data;
  const showSettings = !!user && data.can_admin && !readOnly;
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem render={() => <Link to="/repository">Repositories</Link>} />
          <BreadcrumbItem render={() => <Link to={`/repository?namespace=${encodeURIComponent(data.namespace)}`}>{data.namespace}</Link>} />
          <BreadcrumbItem isActive>{data.name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">
          {repository}{" "}
          <Label isCompact color={data.is_public ? "blue" : "grey"}>{data.is_public ? "Public" : "Private"}</Label>{" "}
          {data.state === "READ_ONLY" ? <Label isCompact color="orange">Read-only</Label> : null}
        </Title>
      </PageSection>
      <PageSection>
        <Tabs
          activeKey={tab}
          onSelect={(_e, key) => setParams(key === "information" ? {} : { tab: String(key) })}
          aria-label="Repository sections"
          mountOnEnter
          unmountOnExit
        >
          <Tab eventKey="information" title={<TabTitleText>Information</TabTitleText>}>
            <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
              <InformationTab repository={repository} repo={data} />
            </PageSection>
          </Tab>
          <Tab eventKey="tags" title={<TabTitleText>Tags</TabTitleText>}>
            <TagsTab repository={repository} repo={data} />
          </Tab>
          <Tab eventKey="history" title={<TabTitleText>Tag history</TabTitleText>}>
            <HistoryTab repository={repository} repo={data} />
          </Tab>
          {!!user && data.can_admin ? (
            <Tab eventKey="logs" title={<TabTitleText>Usage logs</TabTitleText>}>
              <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
                <LogsView scope={{ kind: "repository", name: repository }} />
              </PageSection>
            </Tab>
          ) : null}
          {showSettings ? (
            <Tab eventKey="settings" title={<TabTitleText>Settings</TabTitleText>}>
              <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
                <SettingsTab repository={repository} repo={data} />
              </PageSection>
            </Tab>
          ) : null}
        </Tabs>
      </PageSection>
    </>
  );
}
