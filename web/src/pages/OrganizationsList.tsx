import {
  Alert,
  Button,
  Content,
  Form,
  FormGroup,
  FormHelperText,
  HelperText,
  HelperTextItem,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  PageSection,
  TextInput,
  Title,
  ToolbarItem,
} from "@patternfly/react-core";
import CogIcon from "@patternfly/react-icons/dist/esm/icons/cog-icon";
import TrashIcon from "@patternfly/react-icons/dist/esm/icons/trash-icon";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";

import { ConfirmDelete } from "../components/ConfirmDelete";
import { GuardedButton } from "../components/Guarded";
import { ListTable, refused, useServerPage, useUrlList } from "../components/ListTable";
import { api } from "../lib/api";
import { dateTimeParts, humanSize } from "../lib/dates";
import { keepSelected } from "../lib/filters";
import { namespaceNameProblem } from "../lib/names";
import { organizationSettingsRoute, settingsClosedReason } from "../lib/orgSettings";
import { organizationRoute } from "../lib/urls";
import { useSession } from "../session";
import type { OrganizationRow } from "../types";

const SPEC = { sorts: ["name", "email", "repositories", "teams", "members", "robots", "last_modified", "size"] as const, sort: "name" as const };

function CreateOrganization({ onClose }: { onClose: () => void }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const problem = name ? namespaceNameProblem(name) : null;
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.post("/organization/", { name, ...(email ? { email } : {}) });
      toast("success", `Successfully created organization ${name}`);
      await queryClient.invalidateQueries({ queryKey: ["organizations"] });
      await queryClient.invalidateQueries({ queryKey: ["session"] });
      onClose();
      navigate(organizationRoute(name));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="small" onClose={onClose} aria-labelledby="create-org-title" elementToFocus="#org-name">
      <ModalHeader title="Create organisation" labelId="create-org-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="create-org-error" /> : null}
        <Form id="create-org-form" onSubmit={(e) => { e.preventDefault(); if (name && !problem) void submit(); }}>
          <FormGroup label="Organisation name" isRequired fieldId="org-name">
            <TextInput id="org-name" value={name} onChange={(_e, v) => setName(v)} isRequired validated={problem ? "error" : "default"} />
            <FormHelperText>
              <HelperText>
                <HelperTextItem variant={problem ? "error" : "default"}>{problem ?? "It is also the namespace of its repositories: name/repository"}</HelperTextItem>
              </HelperText>
            </FormHelperText>
          </FormGroup>
          <FormGroup label="Administrator e-mail" fieldId="org-email">
            <TextInput id="org-email" type="email" value={email} onChange={(_e, v) => setEmail(v)} />
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="create-org-form" id="create-org-submit" isDisabled={!name || !!problem || busy} isLoading={busy}>Create</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

/** A date and time that may take two lines (date, then time) in a narrow column, never breaking inside either. */
function DateTime({ value }: { value: string | null }) {
  const [date, time] = dateTimeParts(value);
  return time === undefined ? <>{date}</> : <><span className="meridian-nowrap">{date}</span> <span className="meridian-nowrap">{time}</span></>;
}

/** The row's way to the organisation's Settings tab (Quay's Settings column); for those who may not
 * change it, shown disabled with the reason. */
function SettingsLink({ row }: { row: OrganizationRow }) {
  const { readOnly } = useSession();
  const reason = settingsClosedReason(row.name, row.is_admin, readOnly);
  const label = `Settings of ${row.name}`;
  if (reason) {
    return <GuardedButton id={`settings-of-${row.name}`} variant="plain" aria-label={label} reason={reason} icon={<CogIcon />} />;
  }
  const to = organizationSettingsRoute(row.name);
  return (
    <Button variant="plain" aria-label={label} icon={<CogIcon />}
            component={(props: object) => <Link {...props} to={to} />} />
  );
}

/** Organisations the user is in (superusers: all), with their counts; create, delete one or many. */
export function OrganizationsView({ prefix = "" }: { prefix?: string }) {
  const { user, readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const control = useUrlList(SPEC, prefix);
  const [selected, setSelected] = useState<string[]>([]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<string[] | null>(null);
  const organizations = useServerPage<OrganizationRow>(control, ["organizations"], "/browse/organizations", "organizations", { enabled: !!user });
  const rows = organizations.rows;
  useEffect(() => setSelected((s) => keepSelected(s, rows.map((r) => r.name))), [rows.map((r) => r.name).join(",")]); // eslint-disable-line react-hooks/exhaustive-deps
  const canChange = !!user && !readOnly;
  const adminReason = (row: OrganizationRow) => (row.is_admin ? null : `Only administrators of ${row.name} can delete it`);
  return (
    <>
      <ListTable
        {...organizations}
        label="Organisations"
        testId="organizations-table"
        control={control}
        rowKey={(r) => r.name}
        empty={{ title: "No organisations", body: user ? "You are not a member of any organisation yet." : "Sign in to see your organisations." }}
        filterLabel="Filter organisations by name"
        regex
        dense
        select={canChange ? { selected, onChange: setSelected, disabled: (r) => !r.is_admin } : undefined}
        toolbar={canChange ? (
          <>
            <ToolbarItem>
              <Button id="create-organization" onClick={() => setCreating(true)}>Create organisation</Button>
            </ToolbarItem>
            <ToolbarItem>
              <GuardedButton
                id="delete-organizations"
                variant="plain"
                aria-label="Delete the checked organisations"
                reason={selected.length ? null : "Check the organisations to delete first"}
                onClick={() => setDeleting(selected)}
                icon={<TrashIcon />}
              />
            </ToolbarItem>
          </>
        ) : null}
        actions={canChange ? (r) => [refused("Delete", adminReason(r), () => setDeleting([r.name]))] : undefined}
        columns={[
          { label: "Name", sort: "name", render: (r) => <Link to={organizationRoute(r.name)}>{r.name}</Link>, breakAnywhere: true },
          { label: "Admin e-mail", sort: "email", render: (r) => r.email ?? "—", breakAnywhere: true },
          { label: "Repositories", sort: "repositories", initialOrder: "desc", render: (r) => r.repositories },
          { label: "Teams", sort: "teams", initialOrder: "desc", render: (r) => r.teams },
          { label: "Members", sort: "members", initialOrder: "desc", render: (r) => r.members },
          { label: "Robots", sort: "robots", initialOrder: "desc", render: (r) => r.robots ?? "—" },
          { label: "Last modified", sort: "last_modified", initialOrder: "desc", render: (r) => <DateTime value={r.last_modified} /> },
          { label: "Size", sort: "size", initialOrder: "desc", render: (r) => humanSize(r.size), nowrap: true },
          { label: "Settings", render: (r) => <SettingsLink row={r} /> },
        ]}
      />
      {creating ? <CreateOrganization onClose={() => setCreating(false)} /> : null}
      {deleting ? (
        <ConfirmDelete
          title={deleting.length === 1 ? `Delete organisation ${deleting[0]}?` : `Delete ${deleting.length} organisations?`}
          names={deleting}
          searchable
          warning="Their repositories, teams and robot accounts go with them."
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            const failures: string[] = [];
            for (const name of deleting) {
              try {
                await api.del(`/organization/${encodeURIComponent(name)}`);
              } catch (e) {
                failures.push(`${name}: ${(e as Error).message}`);
              }
            }
            setSelected([]);
            await queryClient.invalidateQueries({ queryKey: ["organizations"] });
            await queryClient.invalidateQueries({ queryKey: ["session"] });
            if (failures.length) throw new Error(failures.join("; "));
            toast("success", deleting.length === 1 ? `Deleted organisation ${deleting[0]}` : `Deleted ${deleting.length} organisations`);
          }}
        />
      ) : null}
    </>
  );
}

export default function OrganizationsList() {
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Organisations</Title>
        <Content component="p">Organisations you are a member of, with their repositories, teams and robot accounts.</Content>
      </PageSection>
      <PageSection>
        <OrganizationsView />
      </PageSection>
    </>
  );
}
