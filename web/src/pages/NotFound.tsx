import { Button, EmptyState, EmptyStateBody, PageSection } from "@patternfly/react-core";
import { Link } from "react-router-dom";

export default function NotFound({ what }: { what?: string }) {
  return (
    <PageSection>
      <EmptyState titleText={what ? `${what} not found` : "Page not found"} headingLevel="h1">
        <EmptyStateBody>It does not exist, or you may not see it.</EmptyStateBody>
        <Button variant="link" component={(props: object) => <Link {...props} to="/repository" />}>
          Back to repositories
        </Button>
      </EmptyState>
    </PageSection>
  );
}
