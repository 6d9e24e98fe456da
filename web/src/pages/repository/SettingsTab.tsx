import {
  Alert,
  Button,
  Checkbox,
  Content,
  Divider,
  Flex,
  FlexItem,
  Form,
  FormGroup,
  FormSelect,
  FormSelectOption,
  Radio,
  Title,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { EntityPicker } from "../../components/EntityPicker";
import { NotificationsPanel } from "../../components/notifications/NotificationsPanel";
import { api, ApiError, repoPath } from "../../lib/api";
import { useSession } from "../../session";
import type { Repository } from "../../types";

type Role = "read" | "write" | "admin";
const ROLES: Role[] = ["read", "write", "admin"];
interface Permission { name: string; role: Role; is_robot?: boolean }

export function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <section style={{ marginBottom: "var(--pf-t--global--spacer--xl)" }}>
      <Title headingLevel="h2">{title}</Title>
      {children}
      <Divider style={{ marginTop: "var(--pf-t--global--spacer--lg)" }} />
    </section>
  );
}

function Permissions({ repository }: { repository: string }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const base = `/repository/${repoPath(repository)}/permissions`;
  const users = useQuery({ queryKey: ["permissions", repository, "user"], queryFn: () => api.get<{ permissions: Record<string, Permission> }>(`${base}/user/`) });
  const teams = useQuery({ queryKey: ["permissions", repository, "team"], queryFn: () => api.get<{ permissions: Record<string, Permission> }>(`${base}/team/`) });
  const [kind, setKind] = useState<"user" | "team">("user");
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("read");
  const [error, setError] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["permissions", repository] });
  const change = async (holder: "user" | "team", who: string, newRole: Role | null) => {
    setError(null);
    try {
      if (newRole) await api.put(`${base}/${holder}/${encodeURIComponent(who)}`, { role: newRole });
      else await api.del(`${base}/${holder}/${encodeURIComponent(who)}`);
      toast("success", newRole ? `Set ${who}'s permission to ${newRole}` : `Removed ${who}'s permission`);
      await refresh();
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    }
  };
  const rows = [
    ...Object.values(users.data?.permissions ?? {}).map((p) => ({ ...p, holder: "user" as const })),
    ...Object.values(teams.data?.permissions ?? {}).map((p) => ({ ...p, holder: "team" as const })),
  ];
  return (
    <Section title="User and robot permissions">
      {error ? <Alert variant="danger" isInline title={error} data-testid="permission-error" /> : null}
      <Table aria-label="Permissions" variant="compact" data-testid="permissions-table">
        <Thead>
          <Tr>
            <Th>Name</Th>
            <Th>Kind</Th>
            <Th>Permission</Th>
            <Th screenReaderText="Actions" />
          </Tr>
        </Thead>
        <Tbody>
          {rows.map((p) => (
            <Tr key={`${p.holder}-${p.name}`}>
              <Td dataLabel="Name">{p.name}</Td>
              <Td dataLabel="Kind">{p.holder === "team" ? "Team" : p.is_robot ? "Robot" : "User"}</Td>
              <Td dataLabel="Permission">
                <FormSelect value={p.role} onChange={(_e, v) => void change(p.holder, p.name, v as Role)} aria-label={`Permission of ${p.name}`}>
                  {ROLES.map((r) => <FormSelectOption key={r} value={r} label={r[0].toUpperCase() + r.slice(1)} />)}
                </FormSelect>
              </Td>
              <Td dataLabel="Actions">
                <Button variant="link" isDanger onClick={() => void change(p.holder, p.name, null)} aria-label={`Remove ${p.name}`}>Remove</Button>
              </Td>
            </Tr>
          ))}
        </Tbody>
      </Table>
      <Form isHorizontal={false} onSubmit={async (e) => { e.preventDefault(); if (name && (await change(kind, name, role))) setName(""); }}>
        <Flex alignItems={{ default: "alignItemsFlexEnd" }}>
          <FlexItem>
            <FormGroup label="Grant to" fieldId="grant-kind">
              <FormSelect id="grant-kind" value={kind} onChange={(_e, v) => setKind(v as "user" | "team")}>
                <FormSelectOption value="user" label="User or robot" />
                <FormSelectOption value="team" label="Team" />
              </FormSelect>
            </FormGroup>
          </FlexItem>
          <FlexItem>
            <FormGroup label="Name" fieldId="grant-name">
              <EntityPicker id="grant-name" label="Name" namespace={repository.split("/")[0]} kinds={kind === "team" ? ["team"] : ["user", "robot"]}
                            value={name} onChange={setName} onPick={(e) => setName(e.name)} />
            </FormGroup>
          </FlexItem>
          <FlexItem>
            <FormGroup label="Permission" fieldId="grant-role">
              <FormSelect id="grant-role" value={role} onChange={(_e, v) => setRole(v as Role)}>
                {ROLES.map((r) => <FormSelectOption key={r} value={r} label={r[0].toUpperCase() + r.slice(1)} />)}
              </FormSelect>
            </FormGroup>
          </FlexItem>
          <FlexItem>
            <Button type="submit" isDisabled={!name} id="grant-permission">Add permission</Button>
          </FlexItem>
        </Flex>
      </Form>
    </Section>
  );
}

export function Replication({ namespace }: { namespace: string }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const current = useQuery({
    queryKey: ["replication", namespace],
    queryFn: () => api.get<{ locations: string[]; default_locations: string[]; effective_locations: string[] }>(`/organization/${encodeURIComponent(namespace)}/replication`),
    retry: false,
  });
  const known = useQuery({ queryKey: ["locations"], queryFn: () => api.get<{ locations: string[] }>("/browse/locations"), staleTime: Infinity });
  const [chosen, setChosen] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setChosen(null), [current.data]);
  if (current.error) return null; // not a member of the namespace: nothing to show or set
  const locations = known.data?.locations ?? [];
  const selected = chosen ?? current.data?.locations ?? [];
  const defaults = new Set(current.data?.default_locations ?? []);
  const save = async () => {
    setError(null);
    try {
      await api.put(`/organization/${encodeURIComponent(namespace)}/replication`, { locations: selected });
      toast("success", `Replication locations of ${namespace} saved`);
      await queryClient.invalidateQueries({ queryKey: ["replication", namespace] });
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <Section title={`Replication locations of ${namespace}`}>
      <Content component="p">Every repository of the namespace is copied to these locations; the registry's defaults always apply.</Content>
      {error ? <Alert variant="danger" isInline title={error} data-testid="replication-error" /> : null}
      {locations.map((l) => (
        <Checkbox
          key={l}
          id={`replicate-${l}`}
          label={defaults.has(l) ? `${l} (registry default)` : l}
          isChecked={defaults.has(l) || selected.includes(l)}
          isDisabled={defaults.has(l)}
          onChange={(_e, on) => setChosen(on ? [...selected, l] : selected.filter((x) => x !== l))}
        />
      ))}
      <Button onClick={() => void save()} id="save-replication" style={{ marginTop: "var(--pf-t--global--spacer--sm)" }}>Save locations</Button>
    </Section>
  );
}

export function SettingsTab({ repository, repo }: { repository: string; repo: Repository }) {
  const { config, toast } = useSession();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["repository", repository] });
  const visibility = async (value: "public" | "private") => {
    try {
      await api.post(`/repository/${repoPath(repository)}/changevisibility`, { visibility: value });
      toast("success", `${repository} is now ${value}`);
      await refresh();
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  const state = async (value: "NORMAL" | "READ_ONLY") => {
    try {
      await api.put(`/repository/${repoPath(repository)}/changestate`, { state: value });
      toast("success", `${repository} is now ${value === "NORMAL" ? "normal" : "read-only"}`);
      await refresh();
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  return (
    <>
      {error ? <Alert variant="danger" isInline title={error} /> : null}
      <Permissions repository={repository} />
      <Section title="Repository visibility">
        <FormGroup role="radiogroup" fieldId="visibility" isInline>
          <Radio id="visibility-public" name="visibility" label="Public: anyone may pull" isChecked={repo.is_public} onChange={() => void visibility("public")} />
          <Radio id="visibility-private" name="visibility" label="Private: only those given permission" isChecked={!repo.is_public} onChange={() => void visibility("private")} />
        </FormGroup>
      </Section>
      <Section title="Repository state">
        <FormGroup role="radiogroup" fieldId="state" isInline>
          <Radio id="state-normal" name="state" label="Normal" isChecked={repo.state === "NORMAL"} onChange={() => void state("NORMAL")} />
          <Radio id="state-readonly" name="state" label="Read-only: pushes and tag changes are refused" isChecked={repo.state === "READ_ONLY"} onChange={() => void state("READ_ONLY")} />
        </FormGroup>
      </Section>
      {config.features.STORAGE_REPLICATION ? <Replication namespace={repo.namespace} /> : null}
      <Section title="Events and notifications">
        <NotificationsPanel base={`/repository/${repoPath(repository)}/notification`} scope={repository} />
      </Section>
      <Section title="Delete repository">
        <Content component="p">Deleting removes the repository and all its tags at once; storage is reclaimed by garbage collection.</Content>
        <Button variant="danger" onClick={() => setDeleting(true)} id="delete-repository">Delete repository</Button>
      </Section>
      {deleting ? (
        <ConfirmDelete
          title={`Delete ${repository}?`}
          names={[repository]}
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.del(`/repository/${repoPath(repository)}`);
            toast("success", `Deleted ${repository}`);
            await queryClient.invalidateQueries({ queryKey: ["repositories"] });
            navigate("/repository");
          }}
        />
      ) : null}
    </>
  );
}
