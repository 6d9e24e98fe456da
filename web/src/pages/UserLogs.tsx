import { Content, PageSection, Title } from "@patternfly/react-core";

import { LogsView } from "../components/LogsView";

/** The signed-in user's own usage logs: what they did, anywhere in the registry. */
export default function UserLogs() {
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Your usage logs</Title>
        <Content component="p">What you did in the registry, newest first.</Content>
      </PageSection>
      <PageSection>
        <LogsView scope={{ kind: "user" }} />
      </PageSection>
    </>
  );
}
