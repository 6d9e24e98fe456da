// Default permissions: when anyone, or one user or robot, creates a repository in the organisation,
// a user, robot or team gets Read, Write or Admin on it.
import {
  Alert,
  Button,
  Content,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  Label,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  Radio,
  ToolbarItem,
} from "@patternfly/react-core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { EntityPicker, kindLabel } from "../../components/EntityPicker";
import { ListTable, useUrlList } from "../../components/ListTable";
import { api } from "../../lib/api";
import { localPage } from "../../lib/listing";
import { useSession } from "../../session";
import type { Entity, Prototype, RepoRole } from "../../types";

const ROLES: { value: RepoRole; label: string }[] = [{ value: "read", label: "Read" }, { value: "write", label: "Write" }, { value: "admin", label: "Admin" }];
const path = (org: string) => `/organization/${encodeURIComponent(org)}/prototypes`;

function delegateKind(p: Prototype): Entity["kind"] {
  return p.delegate.kind === "team" ? "team" : p.delegate.name.includes("+") ? "robot" : "user";
}

function CreateDefaultPermission({ org, onClose }: { org: string; onClose: () => void }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const [who, setWho] = useState<"anyone" | "specific">("anyone");
  const [creatorText, setCreatorText] = useState("");
  const [creator, setCreator] = useState<Entity | null>(null);
  const [delegateText, setDelegateText] = useState("");
  const [delegate, setDelegate] = useState<Entity | null>(null);
  const [role, setRole] = useState<RepoRole>("write");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ready = !!delegate && (who === "anyone" || !!creator);
  const submit = async () => {
    if (!ready) return;
    setBusy(true);
    setError(null);
    try {
      await api.post(path(org), {
        role,
        delegate: { name: delegate!.name, kind: delegate!.kind === "team" ? "team" : "user" },
        ...(who === "specific" ? { activating_user: { name: creator!.name } } : {}),
      });
      toast("success", "Successfully created default permission for creator");
      await queryClient.invalidateQueries({ queryKey: ["prototypes", org] });
      onClose();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="medium" onClose={onClose} aria-labelledby="create-default-title">
      <ModalHeader title="Create default permission" labelId="create-default-title"
                   description="Applies to every repository created in the organisation from now on." />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="default-error" /> : null}
        <Form id="create-default-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
          <FormGroup role="radiogroup" label="Repository creator" fieldId="default-who" isInline>
            <Radio id="default-anyone" name="default-who" label="Anyone" isChecked={who === "anyone"} onChange={() => setWho("anyone")} />
            <Radio id="default-specific" name="default-who" label="Specific user" isChecked={who === "specific"} onChange={() => setWho("specific")} />
          </FormGroup>
          {who === "specific" ? (
            <FormGroup label="Creator (user or robot account)" fieldId="default-creator" isRequired>
              <EntityPicker id="default-creator" label="Creator" namespace={org} kinds={["user", "robot"]} value={creatorText}
                            onChange={(t) => { setCreatorText(t); setCreator(null); }}
                            onPick={(e) => { setCreator(e); setCreatorText(e.name); }} />
              <FormHelperText><HelperText><HelperTextItem>{creator ? `${kindLabel(creator.kind)} ${creator.name}` : "Type to find a user or robot account"}</HelperTextItem></HelperText></FormHelperText>
            </FormGroup>
          ) : null}
          <FormGroup label="Applied to (user, robot account or team)" fieldId="default-delegate" isRequired>
            <EntityPicker id="default-delegate" label="Applied to" namespace={org} kinds={["user", "robot", "team"]} value={delegateText}
                          onChange={(t) => { setDelegateText(t); setDelegate(null); }}
                          onPick={(e) => { setDelegate(e); setDelegateText(e.name); }} />
            <FormHelperText><HelperText><HelperTextItem>{delegate ? `${kindLabel(delegate.kind)} ${delegate.name}` : "Type to find a user, robot account or team"}</HelperTextItem></HelperText></FormHelperText>
          </FormGroup>
          <FormGroup label="Permission" fieldId="default-role">
            <FormSelect id="default-role" value={role} onChange={(_e, v) => setRole(v as RepoRole)}>
              {ROLES.map((r) => <FormSelectOption key={r.value} value={r.value} label={r.label} />)}
            </FormSelect>
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="create-default-form" id="create-default-submit" isDisabled={!ready || busy} isLoading={busy}>
          Create default permission
        </Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

export function DefaultPermissionsTab({ org }: { org: string }) {
  const { readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const control = useUrlList({ sorts: ["creator", "delegate", "role"] as const, sort: "creator" });
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Prototype | null>(null);
  const list = useQuery({ queryKey: ["prototypes", org], queryFn: () => api.get<{ prototypes: Prototype[] }>(path(org)) });
  // An organisation holds a handful of default permissions: the API gives them whole; paged here.
  const rank = { read: 1, write: 2, admin: 3 };
  const page = localPage(list.data?.prototypes ?? [], control.state, (p) => `${p.activating_user?.name ?? ""} ${p.delegate.name}`,
    (p, key) => (key === "role" ? rank[p.role] : key === "delegate" ? p.delegate.name : p.activating_user?.name ?? ""));
  const setRole = async (p: Prototype, role: RepoRole) => {
    try {
      await api.put(`${path(org)}/${p.id}`, { role });
      toast("success", `Default permission for ${p.delegate.name} is now ${role}`);
    } catch (e) {
      toast("danger", (e as Error).message);
    }
    await queryClient.invalidateQueries({ queryKey: ["prototypes", org] });
  };
  return (
    <>
      <Content component="p">When a repository is created in {org}, these users, robot accounts and teams get a permission on it.</Content>
      <ListTable
        label="Default permissions"
        testId="defaults-table"
        control={control}
        rows={page.rows}
        total={page.total}
        rowKey={(p) => p.id}
        rowLabel={(p) => `${p.delegate.name} when ${p.activating_user ? p.activating_user.name : "anyone"} creates`}
        pending={list.isPending}
        error={list.error}
        empty={{ title: "No default permissions", body: "Repositories get only their creator's permission." }}
        filterLabel="Filter by name"
        toolbar={readOnly ? null : (
          <ToolbarItem><Button id="create-default" onClick={() => setCreating(true)}>Create default permission</Button></ToolbarItem>
        )}
        actions={readOnly ? undefined : (p) => [{ title: "Delete", onClick: () => setDeleting(p) }]}
        columns={[
          { label: "Repository creator", sort: "creator", render: (p) => p.activating_user ? <>{p.activating_user.name} <Label isCompact>{p.activating_user.name.includes("+") ? "Robot" : "User"}</Label></> : "Anyone" },
          { label: "Applied to", sort: "delegate", render: (p) => <>{p.delegate.name} <Label isCompact>{kindLabel(delegateKind(p))}</Label></> },
          {
            label: "Permission", sort: "role", initialOrder: "desc", render: (p) => readOnly ? ROLES.find((r) => r.value === p.role)!.label : (
              <FormSelect aria-label={`Permission for ${p.delegate.name}`} value={p.role} onChange={(_e, v) => void setRole(p, v as RepoRole)}>
                {ROLES.map((r) => <FormSelectOption key={r.value} value={r.value} label={r.label} />)}
              </FormSelect>
            ),
          },
        ]}
      />
      {creating ? <CreateDefaultPermission org={org} onClose={() => setCreating(false)} /> : null}
      {deleting ? (
        <ConfirmDelete
          title="Delete default permission?"
          names={[`${deleting.activating_user ? `When ${deleting.activating_user.name} creates` : "When anyone creates"} a repository: ${deleting.delegate.name} gets ${deleting.role}`]}
          typed={false}
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(`${path(org)}/${deleting.id}`);
            toast("success", "Deleted the default permission");
            await queryClient.invalidateQueries({ queryKey: ["prototypes", org] });
          }}
        />
      ) : null}
    </>
  );
}
