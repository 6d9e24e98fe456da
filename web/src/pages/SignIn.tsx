import { ActionGroup, Alert, Button, Card, CardBody, CardTitle, Form, FormGroup, PageSection, TextInput, Title } from "@patternfly/react-core";
import { FormEvent, useState } from "react";
import { Navigate, useNavigate, useSearchParams } from "react-router-dom";

import { ApiError } from "../lib/api";
import { useSession } from "../session";

/** Only paths inside the UI are followed after sign-in (no open redirect). */
function nextPath(value: string | null): string {
  return value && value.startsWith("/") && !value.startsWith("//") && !value.startsWith("/signin") ? value : "/repository";
}

export default function SignIn() {
  const { signIn, notice, user, config } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (user && !busy) return <Navigate to={nextPath(params.get("next"))} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
      navigate(nextPath(params.get("next")), { replace: true });
    } catch (e) {
      setError(e instanceof ApiError ? e.message : "Sign-in failed");
    } finally {
      setBusy(false);
    }
  };
  return (
    <PageSection>
      <Card className="meridian-signin">
        <CardTitle>
          <Title headingLevel="h1">Sign in to {config.config.REGISTRY_TITLE || "Meridian"}</Title>
        </CardTitle>
        <CardBody>
          {notice ? <Alert variant="info" isInline title={notice} data-testid="session-notice" /> : null}
          {error ? <Alert variant="danger" isInline title={error} data-testid="signin-error" /> : null}
          <Form onSubmit={submit}>
            <FormGroup label="Username" isRequired fieldId="username">
              <TextInput id="username" name="username" autoComplete="username" isRequired value={username} onChange={(_e, v) => setUsername(v)} />
            </FormGroup>
            <FormGroup label="Password" isRequired fieldId="password">
              <TextInput id="password" name="password" type="password" autoComplete="current-password" isRequired value={password} onChange={(_e, v) => setPassword(v)} />
            </FormGroup>
            <ActionGroup>
              <Button type="submit" variant="primary" isLoading={busy} isDisabled={busy || !username || !password}>
                Sign in
              </Button>
            </ActionGroup>
          </Form>
        </CardBody>
      </Card>
    </PageSection>
  );
}
