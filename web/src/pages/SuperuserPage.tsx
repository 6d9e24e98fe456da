// The superuser panel: users (create, change e-mail or password, disable, delete), every
// organisation, service keys (what the read-only procedure needs, without SQL), the registry's
// read-only status, and registry-wide usage logs.
import {
  Alert,
  Button,
  Checkbox,
  ClipboardCopy,
  Content,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  Label,
  List,
  ListItem,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  PageSection,
  Tab,
  Tabs,
  TabTitleText,
  TextArea,
  TextInput,
  Title,
  ToolbarItem,
} from "@patternfly/react-core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { ReactNode, useState } from "react";
import { useSearchParams } from "react-router-dom";

import { ConfirmDelete } from "../components/ConfirmDelete";
import { ListTable, refused, useServerPage, useUrlList } from "../components/ListTable";
import { LogsView } from "../components/LogsView";
import { api } from "../lib/api";
import { formatDateTime } from "../lib/dates";
import { localPage } from "../lib/listing";
import { namespaceNameProblem } from "../lib/names";
import { useSession } from "../session";
import type { RegistryStatus, ServiceKey, UserRow } from "../types";
import NotFound from "./NotFound";
import { OrganizationsView } from "./OrganizationsList";

function FormModal({ title, id, submitLabel, onClose, onSubmit, ready, children }: {
  title: string; id: string; submitLabel: string; onClose: () => void; onSubmit: () => Promise<void>; ready: boolean; children: ReactNode;
}) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (!ready) return;
    setBusy(true);
    setError(null);
    try {
      await onSubmit();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="small" onClose={onClose} aria-labelledby={`${id}-title`}>
      <ModalHeader title={title} labelId={`${id}-title`} />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid={`${id}-error`} /> : null}
        <Form id={id} onSubmit={(e) => { e.preventDefault(); void submit(); }}>{children}</Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form={id} id={`${id}-submit`} isDisabled={!ready || busy} isLoading={busy}>{submitLabel}</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

type UserDialog = { kind: "create" } | { kind: "email" | "password" | "delete"; user: UserRow };

function UsersTab() {
  const { user: me, readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const control = useUrlList({ sorts: ["name", "email", "created", "enabled"] as const, sort: "name" }, "u_");
  const status = params.get("u_status") === "enabled" || params.get("u_status") === "disabled" ? params.get("u_status")! : "";
  const [dialog, setDialog] = useState<UserDialog | null>(null);
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [generated, setGenerated] = useState<{ username: string; password: string } | null>(null);
  const users = useServerPage<UserRow>(control, ["users"], "/browse/users", "users",
    { params: status ? { enabled: String(status === "enabled") } : {} });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["users"] });
  const open = (next: UserDialog) => {
    setUsername("");
    setEmail(next.kind === "email" ? next.user.email ?? "" : "");
    setPassword("");
    setDialog(next);
  };
  const change = async (user: UserRow, body: Record<string, unknown>, message: string) => {
    await api.put(`/superuser/users/${encodeURIComponent(user.username)}`, body);
    toast("success", message);
    await refresh();
  };
  const self = (u: UserRow) => (u.username === me?.username ? "You cannot do this to yourself" : null);
  const usernameProblem = username ? namespaceNameProblem(username) : null;
  return (
    <>
      <ListTable
        {...users}
        label="Users"
        testId="users-table"
        control={control}
        rowKey={(u) => u.username}
        empty={{ title: "No users", body: "The registry has no users." }}
        filterLabel="Filter users by name"
        regex
        toolbar={
          <>
            <ToolbarItem>
              <FormSelect id="users-status" aria-label="Status" value={status} onChange={(_e, v) => {
                const next = new URLSearchParams(params);
                if (v) next.set("u_status", v);
                else next.delete("u_status");
                next.delete("u_page");
                setParams(next, { replace: true });
              }}>
                <FormSelectOption value="" label="All users" />
                <FormSelectOption value="enabled" label="Enabled" />
                <FormSelectOption value="disabled" label="Disabled" />
              </FormSelect>
            </ToolbarItem>
            {readOnly ? null : <ToolbarItem><Button id="create-user" onClick={() => open({ kind: "create" })}>Create user</Button></ToolbarItem>}
          </>
        }
        actions={readOnly ? undefined : (u) => [
          { title: "Change e-mail address", onClick: () => open({ kind: "email", user: u }) },
          { title: "Change password", onClick: () => open({ kind: "password", user: u }) },
          u.enabled
            ? refused("Disable user", self(u), () => void change(u, { enabled: false }, `Disabled ${u.username}`).catch((e) => toast("danger", e.message)))
            : { title: "Enable user", onClick: () => void change(u, { enabled: true }, `Enabled ${u.username}`).catch((e) => toast("danger", e.message)) },
          refused("Delete user", self(u), () => open({ kind: "delete", user: u })),
        ]}
        columns={[
          { label: "Username", sort: "name", render: (u) => <>{u.username} {u.super_user ? <Label isCompact color="purple">Superuser</Label> : null}</> },
          { label: "E-mail", sort: "email", render: (u) => u.email ?? "—" },
          { label: "Status", sort: "enabled", render: (u) => <Label isCompact color={u.enabled ? "green" : "red"}>{u.enabled ? "Enabled" : "Disabled"}</Label> },
          { label: "Created", sort: "created", initialOrder: "desc", render: (u) => formatDateTime(u.created), nowrap: true },
        ]}
      />
      {dialog?.kind === "create" ? (
        <FormModal title="Create user" id="create-user-form" submitLabel="Create user" onClose={() => setDialog(null)} ready={!!username && !usernameProblem}
                   onSubmit={async () => {
                     const made = await api.post<{ username: string; password?: string }>("/superuser/users/", {
                       username, ...(email ? { email } : {}), ...(password ? { password } : {}) });
                     toast("success", `Created user ${made.username}`);
                     if (made.password) setGenerated({ username: made.username, password: made.password });
                     setDialog(null);
                     await refresh();
                   }}>
          <FormGroup label="Username" isRequired fieldId="new-username">
            <TextInput id="new-username" value={username} onChange={(_e, v) => setUsername(v)} validated={usernameProblem ? "error" : "default"} />
            {usernameProblem ? <FormHelperText><HelperText><HelperTextItem variant="error">{usernameProblem}</HelperTextItem></HelperText></FormHelperText> : null}
          </FormGroup>
          <FormGroup label="E-mail address" fieldId="new-email">
            <TextInput id="new-email" type="email" value={email} onChange={(_e, v) => setEmail(v)} />
          </FormGroup>
          <FormGroup label="Password" fieldId="new-password">
            <TextInput id="new-password" type="password" value={password} onChange={(_e, v) => setPassword(v)} autoComplete="new-password" />
            <FormHelperText><HelperText><HelperTextItem>At least 8 characters; leave empty to have one generated and shown once.</HelperTextItem></HelperText></FormHelperText>
          </FormGroup>
        </FormModal>
      ) : null}
      {dialog?.kind === "email" ? (
        <FormModal title={`Change the e-mail address of ${dialog.user.username}`} id="email-form" submitLabel="Change e-mail address" ready
                   onClose={() => setDialog(null)}
                   onSubmit={async () => { await change(dialog.user, { email: email || null }, `Changed the e-mail address of ${dialog.user.username}`); setDialog(null); }}>
          <FormGroup label="E-mail address" fieldId="change-email">
            <TextInput id="change-email" type="email" value={email} onChange={(_e, v) => setEmail(v)} />
          </FormGroup>
        </FormModal>
      ) : null}
      {dialog?.kind === "password" ? (
        <FormModal title={`Change the password of ${dialog.user.username}`} id="password-form" submitLabel="Change password" ready={password.length >= 8}
                   onClose={() => setDialog(null)}
                   onSubmit={async () => { await change(dialog.user, { password }, `Changed the password of ${dialog.user.username}`); setDialog(null); }}>
          <FormGroup label="New password" fieldId="change-password">
            <TextInput id="change-password" type="password" value={password} onChange={(_e, v) => setPassword(v)} autoComplete="new-password" />
            <FormHelperText><HelperText><HelperTextItem>At least 8 characters. The user's open sessions end.</HelperTextItem></HelperText></FormHelperText>
          </FormGroup>
        </FormModal>
      ) : null}
      {dialog?.kind === "delete" ? (
        <ConfirmDelete
          title={`Delete user ${dialog.user.username}?`}
          names={[dialog.user.username]}
          warning="Their own repositories go with them."
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await api.del(`/superuser/users/${encodeURIComponent(dialog.user.username)}`);
            toast("success", `Deleted user ${dialog.user.username}`);
            await refresh();
          }}
        />
      ) : null}
      {generated ? (
        <Modal isOpen variant="small" onClose={() => setGenerated(null)} aria-labelledby="generated-title">
          <ModalHeader title={`Password of ${generated.username}`} labelId="generated-title" />
          <ModalBody>
            <Content component="p">Give it to {generated.username}; it is not shown again.</Content>
            <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" textAriaLabel="Generated password">{generated.password}</ClipboardCopy>
          </ModalBody>
          <ModalFooter><Button onClick={() => setGenerated(null)}>Done</Button></ModalFooter>
        </Modal>
      ) : null}
    </>
  );
}

type KeyDialog = { kind: "add" } | { kind: "extend" | "delete"; key: ServiceKey };

function KeysTab() {
  const { readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const control = useUrlList({ sorts: ["name", "created", "expires", "approved"] as const, sort: "created", order: "desc" }, "k_");
  const [showRotating, setShowRotating] = useState(false);
  const [dialog, setDialog] = useState<KeyDialog | null>(null);
  const [jwk, setJwk] = useState("");
  const [name, setName] = useState("");
  const [days, setDays] = useState("7");
  const keys = useQuery({ queryKey: ["service-keys"], queryFn: () => api.get<{ keys: ServiceKey[] }>("/superuser/keys") });
  const shown = (keys.data?.keys ?? []).filter((k) => showRotating || k.approval_type !== "automatic");
  const page = localPage(shown, control.state, (k) => `${k.name} ${k.kid}`, (k, key) =>
    key === "created" ? new Date(k.created) : key === "expires" ? (k.expires ? new Date(k.expires) : null) : key === "approved" ? k.approved : k.name);
  const refresh = async () => {
    await queryClient.invalidateQueries({ queryKey: ["service-keys"] });
    await queryClient.invalidateQueries({ queryKey: ["registry-status"] });
  };
  const approve = async (k: ServiceKey) => {
    try {
      await api.put(`/superuser/keys/${encodeURIComponent(k.kid)}`, { approve: true });
      toast("success", `Approved key ${k.name}`);
    } catch (e) {
      toast("danger", (e as Error).message);
    }
    await refresh();
  };
  let parsed: unknown = null;
  try {
    parsed = jwk ? JSON.parse(jwk) : null;
  } catch {
    parsed = null;
  }
  const jwkProblem = jwk && !(parsed && typeof parsed === "object" && (parsed as { kty?: string }).kty === "RSA") ? "Paste the NAME.jwk file that `meridian keys generate` wrote (an RSA public key in JSON)" : null;
  const daysValue = days === "" ? null : Number(days);
  const daysOk = days === "" || (Number.isInteger(daysValue) && daysValue! >= 1 && daysValue! <= 3650);
  return (
    <>
      <Content component="p">
        Keys that sign registry tokens. Gateways make and rotate their own; read-only mode signs with a key an operator registered and
        approved beforehand (Registry status says whether one is ready).
      </Content>
      <ListTable
        label="Service keys"
        testId="keys-table"
        control={control}
        rows={page.rows}
        total={page.total}
        rowKey={(k) => k.kid}
        pending={keys.isPending}
        error={keys.error}
        empty={{ title: "No service keys", body: showRotating ? "No key is registered." : "No operator key is registered; gateways' rotating keys are hidden." }}
        filterLabel="Filter keys by name or ID"
        toolbar={
          <>
            <ToolbarItem>
              <Checkbox id="show-rotating" label="Show gateways' rotating keys" isChecked={showRotating} onChange={(_e, v) => setShowRotating(v)} />
            </ToolbarItem>
            {readOnly ? null : <ToolbarItem><Button id="add-key" onClick={() => { setJwk(""); setName(""); setDays("7"); setDialog({ kind: "add" }); }}>Add key</Button></ToolbarItem>}
          </>
        }
        actions={readOnly ? undefined : (k) => [
          refused("Approve", k.approved ? "Already approved" : null, () => void approve(k)),
          { title: "Change expiration", onClick: () => { setDays("7"); setDialog({ kind: "extend", key: k }); } },
          { title: "Delete", onClick: () => setDialog({ kind: "delete", key: k }) },
        ]}
        columns={[
          { label: "Name", sort: "name", render: (k) => k.name },
          { label: "Key ID", render: (k) => <span className="meridian-mono">{k.kid.slice(0, 16)}…</span> },
          { label: "Service", render: (k) => k.service },
          { label: "Created", sort: "created", initialOrder: "desc", render: (k) => formatDateTime(k.created), nowrap: true },
          { label: "Expires", sort: "expires", render: (k) => (k.expires ? formatDateTime(k.expires) : "Never"), nowrap: true },
          {
            label: "Approval", sort: "approved", render: (k) => k.approved
              ? <Label isCompact color="green">{k.approval_type === "automatic" ? "Automatic" : `Approved${k.approved_by ? ` by ${k.approved_by}` : ""}`}</Label>
              : <Label isCompact color="orange">Awaiting approval</Label>,
          },
        ]}
      />
      {dialog?.kind === "add" ? (
        <FormModal title="Add service key" id="add-key-form" submitLabel="Add and approve" onClose={() => setDialog(null)} ready={!!parsed && !jwkProblem && daysOk}
                   onSubmit={async () => {
                     await api.post("/superuser/keys", { jwk: parsed, ...(name ? { name } : {}), expiration_days: daysValue });
                     toast("success", "Added and approved the key");
                     setDialog(null);
                     await refresh();
                   }}>
          <FormGroup label="Public key (JWK)" isRequired fieldId="key-jwk">
            <TextArea id="key-jwk" value={jwk} onChange={(_e, v) => setJwk(v)} resizeOrientation="vertical" validated={jwkProblem ? "error" : "default"} />
            <FormHelperText><HelperText><HelperTextItem variant={jwkProblem ? "error" : "default"}>{jwkProblem ?? "The NAME.jwk of `meridian keys generate NAME`"}</HelperTextItem></HelperText></FormHelperText>
          </FormGroup>
          <FormGroup label="Name" fieldId="key-name">
            <TextInput id="key-name" value={name} onChange={(_e, v) => setName(v)} />
          </FormGroup>
          <FormGroup label="Expires in days (empty: never)" fieldId="key-days">
            <TextInput id="key-days" type="number" value={days} onChange={(_e, v) => setDays(v)} validated={daysOk ? "default" : "error"} />
          </FormGroup>
        </FormModal>
      ) : null}
      {dialog?.kind === "extend" ? (
        <FormModal title={`Change the expiration of ${dialog.key.name}`} id="extend-key-form" submitLabel="Change expiration" onClose={() => setDialog(null)} ready={daysOk}
                   onSubmit={async () => {
                     await api.put(`/superuser/keys/${encodeURIComponent(dialog.key.kid)}`, { expiration_days: daysValue });
                     toast("success", daysValue ? `Key ${dialog.key.name} now expires in ${daysValue} days` : `Key ${dialog.key.name} no longer expires`);
                     setDialog(null);
                     await refresh();
                   }}>
          <FormGroup label="Expires in days from now (empty: never)" fieldId="extend-days">
            <TextInput id="extend-days" type="number" value={days} onChange={(_e, v) => setDays(v)} validated={daysOk ? "default" : "error"} />
          </FormGroup>
        </FormModal>
      ) : null}
      {dialog?.kind === "delete" ? (
        <ConfirmDelete
          title={`Delete key ${dialog.key.name}?`}
          names={[`${dialog.key.name} (${dialog.key.kid})`]}
          typed={false}
          warning="Tokens it signed stop working."
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await api.del(`/superuser/keys/${encodeURIComponent(dialog.key.kid)}`);
            toast("success", `Deleted key ${dialog.key.name}`);
            await refresh();
          }}
        />
      ) : null}
    </>
  );
}

function StatusTab() {
  const status = useQuery({ queryKey: ["registry-status"], queryFn: () => api.get<RegistryStatus>("/superuser/registrystatus") });
  if (status.error) return <Alert variant="danger" isInline title={(status.error as Error).message} />;
  if (!status.data) return null;
  const s = status.data;
  return (
    <>
      <DescriptionList isHorizontal data-testid="registry-status">
        <DescriptionListGroup>
          <DescriptionListTerm>State</DescriptionListTerm>
          <DescriptionListDescription>
            <Label color={s.read_only ? "orange" : "green"} data-testid="registry-state">{s.read_only ? "Read-only" : "Normal: pushes and changes accepted"}</Label>
          </DescriptionListDescription>
        </DescriptionListGroup>
        <DescriptionListGroup>
          <DescriptionListTerm>Pushes</DescriptionListTerm>
          <DescriptionListDescription>{s.read_only ? "Refused (read-only)" : s.pushes_disabled ? "Disabled (DISABLE_PUSHES)" : "Accepted"}</DescriptionListDescription>
        </DescriptionListGroup>
        <DescriptionListGroup>
          <DescriptionListTerm>Region of this gateway</DescriptionListTerm>
          <DescriptionListDescription>{s.region}</DescriptionListDescription>
        </DescriptionListGroup>
        <DescriptionListGroup>
          <DescriptionListTerm>Signing key</DescriptionListTerm>
          <DescriptionListDescription>
            <span className="meridian-mono">{s.signing_key.kid ?? "—"}</span> ({s.signing_key.pre_provisioned ? "the operator's key" : "this gateway's own, rotated"})
          </DescriptionListDescription>
        </DescriptionListGroup>
        <DescriptionListGroup>
          <DescriptionListTerm>Ready for read-only mode</DescriptionListTerm>
          <DescriptionListDescription data-testid="read-only-ready">
            {s.ready_for_read_only ? "Yes" : "No"}
            {s.read_only_keys.length ? (
              <List isPlain>
                {s.read_only_keys.map((k) => <ListItem key={k.kid}>{k.name}: <span className="meridian-mono">{k.kid}</span>, expires {k.expires ? formatDateTime(k.expires) : "never"}</ListItem>)}
              </List>
            ) : null}
            {s.unapproved_keys ? <Content component="small">{s.unapproved_keys} key(s) await approval under Service keys.</Content> : null}
          </DescriptionListDescription>
        </DescriptionListGroup>
      </DescriptionList>
      <Alert variant={s.ready_for_read_only ? "info" : "warning"} isInline title="Next step" style={{ marginTop: "var(--pf-t--global--spacer--md)" }} data-testid="next-step">
        {s.next_step} The state is set in config.yaml (REGISTRY_STATE), not here: every region's services follow their own config.
      </Alert>
    </>
  );
}

const TABS = ["users", "organizations", "keys", "status", "logs"] as const;
const TITLES: Record<(typeof TABS)[number], string> = {
  users: "Users", organizations: "Organisations", keys: "Service keys", status: "Registry status", logs: "Usage logs",
};

export default function SuperuserPage() {
  const { user } = useSession();
  const [params, setParams] = useSearchParams();
  if (!user?.super_user) return <NotFound what="This page" />;
  const tab = TABS.find((t) => t === params.get("tab")) ?? "users";
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Superuser</Title>
        <Content component="p">Registry-wide administration for the users named in SUPER_USERS.</Content>
      </PageSection>
      <PageSection>
        <Tabs activeKey={tab} onSelect={(_e, key) => setParams(key === "users" ? {} : { tab: String(key) })} aria-label="Superuser sections" mountOnEnter unmountOnExit>
          {TABS.map((key) => (
            <Tab key={key} eventKey={key} title={<TabTitleText>{TITLES[key]}</TabTitleText>}>
              <PageSection padding={{ default: "noPadding" }} style={{ paddingTop: "var(--pf-t--global--spacer--md)" }}>
                {key === "users" ? <UsersTab /> : null}
                {key === "organizations" ? <OrganizationsView prefix="o_" /> : null}
                {key === "keys" ? <KeysTab /> : null}
                {key === "status" ? <StatusTab /> : null}
                {key === "logs" ? <LogsView scope={{ kind: "registry" }} /> : null}
              </PageSection>
            </Tab>
          ))}
        </Tabs>
      </PageSection>
    </>
  );
}
