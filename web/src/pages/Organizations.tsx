import { Content, EmptyState, EmptyStateBody, PageSection, Title } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { api } from "../lib/api";
import { humanSize } from "../lib/dates";
import type { QuotaReport } from "../lib/quota";
import { useSession } from "../session";

/** An organisation's exact storage use (its quota_report, shown while quotas are on). */
function NamespaceSize({ name }: { name: string }) {
  const report = useQuery({
    queryKey: ["quota-report", name],
    queryFn: async () => (await api.get<{ quota_report?: QuotaReport }>(`/organization/${encodeURIComponent(name)}`)).quota_report ?? null,
  });
  const data = report.data;
  if (!data) return <>—</>;
  return <>{humanSize(data.quota_bytes)}{data.configured_quota ? ` of ${humanSize(data.configured_quota)}` : ""}</>;
}

/** The namespaces the user works in; organisation management is the next part of the UI. */
export default function Organizations() {
  const { user, config } = useSession();
  const namespaces = user?.creatable_namespaces ?? [];
  const sizes = !!config.features.QUOTA_MANAGEMENT;
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Organisations</Title>
        <Content component="p">Namespaces where you may create repositories.</Content>
      </PageSection>
      <PageSection>
        {namespaces.length === 0 ? (
          <EmptyState titleText="No namespaces" headingLevel="h2">
            <EmptyStateBody>{user ? "You may not create repositories in any namespace." : "Sign in to see your namespaces."}</EmptyStateBody>
          </EmptyState>
        ) : (
          <Table aria-label="Namespaces" variant="compact">
            <Thead>
              <Tr>
                <Th>Name</Th>
                <Th>Kind</Th>
                {sizes ? <Th>Size</Th> : null}
                <Th screenReaderText="Settings" />
              </Tr>
            </Thead>
            <Tbody>
              {namespaces.map((n) => (
                <Tr key={n.name}>
                  <Td dataLabel="Name">
                    <Link to={`/repository?namespace=${encodeURIComponent(n.name)}`}>{n.name}</Link>
                  </Td>
                  <Td dataLabel="Kind">{n.kind === "user" ? "User" : "Organisation"}</Td>
                  {sizes ? <Td dataLabel="Size">{n.kind === "organization" ? <NamespaceSize name={n.name} /> : "—"}</Td> : null}
                  <Td dataLabel="Settings">
                    {n.kind === "organization" ? (
                      <Link to={`/organization/${encodeURIComponent(n.name)}/settings`} aria-label={`Settings of ${n.name}`}>Settings</Link>
                    ) : null}
                  </Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
        )}
      </PageSection>
    </>
  );
}
