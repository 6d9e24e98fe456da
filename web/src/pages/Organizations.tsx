import { Content, EmptyState, EmptyStateBody, PageSection, Title } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { Link } from "react-router-dom";

import { useSession } from "../session";

/** The namespaces the user works in; organisation management is the next part of the UI. */
export default function Organizations() {
  const { user } = useSession();
  const namespaces = user?.creatable_namespaces ?? [];
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
              </Tr>
            </Thead>
            <Tbody>
              {namespaces.map((n) => (
                <Tr key={n.name}>
                  <Td dataLabel="Name">
                    <Link to={`/repository?namespace=${encodeURIComponent(n.name)}`}>{n.name}</Link>
                  </Td>
                  <Td dataLabel="Kind">{n.kind === "user" ? "User" : "Organisation"}</Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
        )}
      </PageSection>
    </>
  );
}
