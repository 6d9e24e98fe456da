// Robot accounts `org+name`: the list (teams, how many repositories, created, last used), details
// on expansion, the creation wizard, credentials with login snippets, regenerating the token,
// repository permissions one by one or in bulk, and deleting one or many.
import {
  Alert,
  Button,
  ClipboardCopy,
  ClipboardCopyVariant,
  CodeBlock,
  CodeBlockCode,
  Content,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  Form,
  FormGroup,
  FormHelperText,
  HelperText,
  HelperTextItem,
  InputGroup,
  InputGroupItem,
  InputGroupText,
  Label,
  LabelGroup,
  List,
  ListItem,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  Tab,
  Tabs,
  TabTitleText,
  TextInput,
  ToolbarItem,
  Wizard,
  WizardStep,
} from "@patternfly/react-core";
import TrashIcon from "@patternfly/react-icons/dist/esm/icons/trash-icon";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { GuardedButton } from "../../components/Guarded";
import { ListTable, useLocalList, useServerPage, useUrlList } from "../../components/ListTable";
import { roleLabel, RoleChanges, RoleTable } from "../../components/RoleTable";
import { api } from "../../lib/api";
import { formatDateTime } from "../../lib/dates";
import { keepSelected } from "../../lib/filters";
import { dockerConfig, podmanLogin, robotShortName, shortNameProblem } from "../../lib/robots";
import { useSession } from "../../session";
import type { Paged, RepositoryRoleRow, RobotRow, TeamRow } from "../../types";

const base = (org: string) => `/organization/${encodeURIComponent(org)}/robots`;

/** The robot's token and how to use it. The registry keeps only the token's hash, so it is shown
 * when the robot is made and when its token is regenerated, never again. */
function CredentialsModal({ robot, token: initial, onClose }: { robot: string; token: string | null; onClose: () => void }) {
  const { config, toast } = useSession();
  const org = robot.split("+")[0];
  const [token, setToken] = useState(initial);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [tab, setTab] = useState<string | number>("account");
  const host = config.config.SERVER_HOSTNAME;
  const regenerate = async () => {
    setBusy(true);
    try {
      const result = await api.post<{ token: string }>(`${base(org)}/${encodeURIComponent(robotShortName(robot))}/regenerate`);
      setToken(result.token);
      setConfirming(false);
      toast("success", `Regenerated the token of ${robot}`);
    } catch (e) {
      toast("danger", (e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="medium" onClose={onClose} aria-labelledby="credentials-title">
      <ModalHeader title={`Credentials for ${robot}`} labelId="credentials-title" />
      <ModalBody>
        {token ? (
          <>
            <Alert variant="info" isInline isPlain title="Copy the token now: the registry keeps only its hash and cannot show it again." />
            <Tabs activeKey={tab} onSelect={(_e, key) => setTab(key)} aria-label="Credential formats">
              <Tab eventKey="account" title={<TabTitleText>Robot account</TabTitleText>}>
                <DescriptionList style={{ marginTop: "var(--pf-t--global--spacer--md)" }}>
                  <DescriptionListGroup>
                    <DescriptionListTerm>Username</DescriptionListTerm>
                    <DescriptionListDescription>
                      <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" textAriaLabel="Robot username">{robot}</ClipboardCopy>
                    </DescriptionListDescription>
                  </DescriptionListGroup>
                  <DescriptionListGroup>
                    <DescriptionListTerm>Token</DescriptionListTerm>
                    <DescriptionListDescription>
                      <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" textAriaLabel="Robot token" data-testid="robot-token">{token}</ClipboardCopy>
                    </DescriptionListDescription>
                  </DescriptionListGroup>
                </DescriptionList>
              </Tab>
              <Tab eventKey="podman" title={<TabTitleText>podman login</TabTitleText>}>
                <ClipboardCopy isReadOnly isCode variant={ClipboardCopyVariant.expansion} isExpanded hoverTip="Copy" clickTip="Copied"
                               textAriaLabel="podman login command" style={{ marginTop: "var(--pf-t--global--spacer--md)" }}>
                  {podmanLogin(host, robot, token)}
                </ClipboardCopy>
              </Tab>
              <Tab eventKey="docker" title={<TabTitleText>Docker configuration</TabTitleText>}>
                <Content component="p" style={{ marginTop: "var(--pf-t--global--spacer--md)" }}>
                  Save as <code>~/.docker/config.json</code> (podman and skopeo read it too):
                </Content>
                <CodeBlock>
                  <CodeBlockCode data-testid="docker-config">{dockerConfig(host, robot, token)}</CodeBlockCode>
                </CodeBlock>
              </Tab>
            </Tabs>
          </>
        ) : (
          <Content component="p" data-testid="token-hidden">
            The token of {robot} was shown when it was made or last regenerated; the registry keeps only its hash. Regenerate it to get
            a new one: the old token stops working at once.
          </Content>
        )}
        {confirming ? (
          <Alert variant="warning" isInline title={`Regenerate the token of ${robot}?`} data-testid="regenerate-warning">
            Everything that signs in with the current token stops working until it is given the new one.
          </Alert>
        ) : null}
      </ModalBody>
      <ModalFooter>
        {confirming ? (
          <>
            <Button variant="danger" id="confirm-regenerate" onClick={() => void regenerate()} isLoading={busy} isDisabled={busy}>Regenerate token</Button>
            <Button variant="link" onClick={() => setConfirming(false)}>Keep the current token</Button>
          </>
        ) : (
          <>
            <Button variant="secondary" id="regenerate-token" onClick={() => setConfirming(true)}>Regenerate token</Button>
            <Button variant="link" onClick={onClose}>Close</Button>
          </>
        )}
      </ModalFooter>
    </Modal>
  );
}

function TeamPicker({ org, selected, onChange }: { org: string; selected: string[]; onChange: (next: string[]) => void }) {
  const control = useLocalList({ sorts: ["name", "role", "members", "repositories"] as const, sort: "name" });
  const teams = useServerPage<TeamRow>(
    control, ["teams", org], `/browse/organization/${encodeURIComponent(org)}/teams`, "teams");
  return (
    <ListTable
      {...teams}
      label="Teams to add the robot to"
      testId="robot-teams"
      control={control}
      rowKey={(r) => r.name}
      empty={{ title: "No teams", body: `${org} has no teams.` }}
      filterLabel="Filter teams"
      select={{ selected, onChange }}
      columns={[
        { label: "Team", sort: "name", render: (r) => r.name },
        { label: "Role", sort: "role", render: (r) => r.role },
        { label: "Members", sort: "members", render: (r) => r.members },
      ]}
    />
  );
}

function CreateRobotWizard({ org, onClose, onCreated }: { org: string; onClose: () => void; onCreated: (robot: string, token: string) => void }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [teams, setTeams] = useState<string[]>([]);
  const [repositories, setRepositories] = useState<RoleChanges>({});
  const [error, setError] = useState<string | null>(null);
  const problem = name ? shortNameProblem(name) : null;
  const granted = Object.entries(repositories).filter(([, role]) => role);
  const finish = async () => {
    setError(null);
    try {
      const created = await api.put<{ name: string; token: string }>(`${base(org)}/${encodeURIComponent(name)}`, {
        description, teams, repositories: Object.fromEntries(granted),
      });
      toast("success", `Successfully created robot account with robot name: ${created.name}`);
      await queryClient.invalidateQueries({ queryKey: ["robots", org] });
      onCreated(created.name, created.token);
    } catch (e) {
      toast("danger", "Error creating robot account");
      setError((e as Error).message);
    }
  };
  return (
    <Modal isOpen variant="large" onClose={onClose} aria-labelledby="robot-wizard-title">
      <ModalHeader title="Create robot account" labelId="robot-wizard-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={`Error creating robot account: ${error}`} data-testid="robot-wizard-error" /> : null}
        <Wizard onClose={onClose} onSave={() => void finish()} height={560} navAriaLabel="Create robot account steps">
          <WizardStep name="Robot name and description" id="robot-name" footer={{ isNextDisabled: !name || !!problem }}>
            <Form onSubmit={(e) => e.preventDefault()}>
              <FormGroup label="Robot name" isRequired fieldId="robot-name-input">
                <InputGroup>
                  <InputGroupText>{org}+</InputGroupText>
                  <InputGroupItem isFill>
                    <TextInput id="robot-name-input" value={name} onChange={(_e, v) => setName(v)} validated={problem ? "error" : "default"} aria-label="Robot name" />
                  </InputGroupItem>
                </InputGroup>
                <FormHelperText>
                  <HelperText>
                    <HelperTextItem variant={problem ? "error" : "default"}>{problem ?? "Lowercase letters, digits and '_', starting with a letter"}</HelperTextItem>
                  </HelperText>
                </FormHelperText>
              </FormGroup>
              <FormGroup label="Description" fieldId="robot-description">
                <TextInput id="robot-description" value={description} onChange={(_e, v) => setDescription(v)} maxLength={255} />
              </FormGroup>
            </Form>
          </WizardStep>
          <WizardStep name="Add to team (optional)" id="robot-teams-step">
            <TeamPicker org={org} selected={teams} onChange={setTeams} />
          </WizardStep>
          <WizardStep name="Add to repository (optional)" id="robot-repositories-step">
            <RoleTable org={org} holderName={name ? `${org}+${name}` : "the robot"} draft={repositories} onDraft={setRepositories} />
          </WizardStep>
          <WizardStep name="Review and finish" id="robot-review" footer={{ nextButtonText: "Review and finish" }}>
            <DescriptionList isHorizontal data-testid="robot-review">
              <DescriptionListGroup>
                <DescriptionListTerm>Robot name</DescriptionListTerm>
                <DescriptionListDescription>{org}+{name}</DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Description</DescriptionListTerm>
                <DescriptionListDescription>{description || "—"}</DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Teams</DescriptionListTerm>
                <DescriptionListDescription>{teams.length ? teams.join(", ") : "None"}</DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Repositories</DescriptionListTerm>
                <DescriptionListDescription>
                  {granted.length ? <List>{granted.map(([repo, role]) => <ListItem key={repo}>{repo}: {roleLabel(role)}</ListItem>)}</List> : "None"}
                </DescriptionListDescription>
              </DescriptionListGroup>
            </DescriptionList>
          </WizardStep>
        </Wizard>
      </ModalBody>
    </Modal>
  );
}

function RobotPermissionsModal({ org, robot, onClose }: { org: string; robot: string; onClose: () => void }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  return (
    <Modal isOpen variant="large" onClose={onClose} aria-labelledby="robot-permissions-title">
      <ModalHeader title={`Set repository permissions for ${robot}`} labelId="robot-permissions-title" />
      <ModalBody>
        <Content component="p">Check repositories and set one permission on all of them, or change one row.</Content>
        <RoleTable
          org={org}
          holder={{ member: robot }}
          holderName={robot}
          apply={async (changes) => {
            try {
              await api.put(`${base(org)}/${encodeURIComponent(robotShortName(robot))}/permissions`, { permissions: changes });
              toast("success", "Successfully updated repository permission");
            } catch (e) {
              toast("danger", (e as Error).message);
            }
            await queryClient.invalidateQueries({ queryKey: ["robots", org] });
          }}
        />
      </ModalBody>
      <ModalFooter>
        <Button variant="primary" onClick={onClose} id="close-robot-permissions">Done</Button>
      </ModalFooter>
    </Modal>
  );
}

function RobotDetails({ org, robot }: { org: string; robot: RobotRow }) {
  const granted = useQuery({
    queryKey: ["repository-roles", org, { member: robot.name, granted: "true", limit: 10 }],
    queryFn: () => api.get<Paged & { repositories: RepositoryRoleRow[] }>(`/browse/organization/${encodeURIComponent(org)}/repositories`,
      { member: robot.name, granted: "true", limit: 10 }),
  });
  return (
    <DescriptionList isHorizontal isCompact data-testid={`robot-details-${robot.name}`}>
      <DescriptionListGroup>
        <DescriptionListTerm>Description</DescriptionListTerm>
        <DescriptionListDescription>{robot.description || "—"}</DescriptionListDescription>
      </DescriptionListGroup>
      <DescriptionListGroup>
        <DescriptionListTerm>Teams</DescriptionListTerm>
        <DescriptionListDescription>{robot.teams.length ? robot.teams.map((t) => t.name).join(", ") : "None"}</DescriptionListDescription>
      </DescriptionListGroup>
      <DescriptionListGroup>
        <DescriptionListTerm>Repository permissions</DescriptionListTerm>
        <DescriptionListDescription>
          {granted.data?.repositories.length ? (
            <List isPlain>
              {granted.data.repositories.map((r) => <ListItem key={r.name}>{r.name}: {roleLabel(r.role)}</ListItem>)}
              {granted.data.total > granted.data.repositories.length ? <ListItem>and {granted.data.total - granted.data.repositories.length} more</ListItem> : null}
            </List>
          ) : granted.isPending ? "…" : "None"}
        </DescriptionListDescription>
      </DescriptionListGroup>
    </DescriptionList>
  );
}

export function RobotsTab({ org }: { org: string }) {
  const { readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const control = useUrlList({ sorts: ["name", "created", "last_accessed", "teams", "repositories"] as const, sort: "name" });
  const [selected, setSelected] = useState<string[]>([]);
  const [creating, setCreating] = useState(false);
  const [credentials, setCredentials] = useState<{ robot: string; token: string | null } | null>(null);
  const [permissions, setPermissions] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string[] | null>(null);
  const robots = useServerPage<RobotRow>(
    control, ["robots", org], `/browse/organization/${encodeURIComponent(org)}/robots`, "robots");
  const rows = robots.rows;
  useEffect(() => setSelected((s) => keepSelected(s, rows.map((r) => r.name))), [rows.map((r) => r.name).join(",")]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <>
      <ListTable
        {...robots}
        label="Robot accounts"
        testId="robots-table"
        control={control}
        rowKey={(r) => r.name}
        empty={{ title: "No robot accounts", body: `${org} has no robot accounts yet.` }}
        filterLabel="Filter robot accounts by name"
        regex
        select={readOnly ? undefined : { selected, onChange: setSelected }}
        expand={(r) => <RobotDetails org={org} robot={r} />}
        toolbar={readOnly ? null : (
          <>
            <ToolbarItem>
              <Button id="create-robot" onClick={() => setCreating(true)}>Create robot account</Button>
            </ToolbarItem>
            <ToolbarItem>
              <GuardedButton id="delete-robots" variant="plain" aria-label="Delete the checked robot accounts" icon={<TrashIcon />}
                             reason={selected.length ? null : "Check the robot accounts to delete first"} onClick={() => setDeleting(selected)} />
            </ToolbarItem>
          </>
        )}
        actions={readOnly ? undefined : (r) => [
          { title: "View credentials", onClick: () => setCredentials({ robot: r.name, token: null }) },
          { title: "Set repository permissions", onClick: () => setPermissions(r.name) },
          { title: "Delete", onClick: () => setDeleting([r.name]) },
        ]}
        columns={[
          { label: "Robot account name", sort: "name", render: (r) => <span className="meridian-mono">{r.name}</span> },
          {
            label: "Teams", sort: "teams", initialOrder: "desc", render: (r) => r.teams.length ? (
              <LabelGroup numLabels={3}>{r.teams.map((t) => <Label key={t.name} isCompact>{t.name}</Label>)}</LabelGroup>
            ) : "No teams",
          },
          {
            label: "Repositories", sort: "repositories", initialOrder: "desc", render: (r) => readOnly ? String(r.repositories) : (
              <Button variant="link" isInline onClick={() => setPermissions(r.name)} aria-label={`Repositories of ${r.name}: ${r.repositories}`}
                      data-testid={`robot-repositories-${r.name}`}>
                {r.repositories === 0 ? "No repositories" : `${r.repositories} ${r.repositories === 1 ? "repository" : "repositories"}`}
              </Button>
            ),
          },
          { label: "Created", sort: "created", initialOrder: "desc", render: (r) => formatDateTime(r.created), nowrap: true },
          { label: "Last accessed", sort: "last_accessed", initialOrder: "desc", render: (r) => (r.last_accessed ? formatDateTime(r.last_accessed) : "Never"), nowrap: true },
        ]}
      />
      {creating ? (
        <CreateRobotWizard org={org} onClose={() => setCreating(false)} onCreated={(robot, token) => { setCreating(false); setCredentials({ robot, token }); }} />
      ) : null}
      {credentials ? <CredentialsModal robot={credentials.robot} token={credentials.token} onClose={() => setCredentials(null)} /> : null}
      {permissions ? <RobotPermissionsModal org={org} robot={permissions} onClose={() => setPermissions(null)} /> : null}
      {deleting ? (
        <ConfirmDelete
          title={deleting.length === 1 ? `Delete robot account ${deleting[0]}?` : `Delete ${deleting.length} robot accounts?`}
          names={deleting}
          searchable={deleting.length > 1}
          warning="Their tokens stop working at once."
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            const failures: string[] = [];
            for (const robot of deleting) {
              try {
                await api.del(`${base(org)}/${encodeURIComponent(robotShortName(robot))}`);
              } catch (e) {
                failures.push(`${robot}: ${(e as Error).message}`);
              }
            }
            setSelected([]);
            await queryClient.invalidateQueries({ queryKey: ["robots", org] });
            if (failures.length) throw new Error(failures.join("; "));
            toast("success", deleting.length === 1 ? `Deleted robot account ${deleting[0]}` : `Deleted ${deleting.length} robot accounts`);
          }}
        />
      ) : null}
    </>
  );
}
