// Teams and membership: the Team view (teams with members, repositories and role), the Members view
// (users and robots with their teams and direct permissions) and the Collaborators view (users with
// direct permissions and no team); creating a team with its wizard.
import {
  Alert,
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
  LabelGroup,
  List,
  ListItem,
  Modal,
  ModalBody,
  ModalHeader,
  TextArea,
  TextInput,
  ToggleGroup,
  ToggleGroupItem,
  ToolbarItem,
  Tooltip,
  Wizard,
  WizardStep,
} from "@patternfly/react-core";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { EntityPicker, kindLabel } from "../../components/EntityPicker";
import { GuardedButton } from "../../components/Guarded";
import { ListTable, refused, useServerPage, useUrlList } from "../../components/ListTable";
import { roleLabel, RoleChanges, RoleTable } from "../../components/RoleTable";
import { api, repoPath } from "../../lib/api";
import { shortNameProblem } from "../../lib/robots";
import { useSession } from "../../session";
import type { Entity, MemberRow, TeamRole, TeamRow } from "../../types";

export const TEAM_ROLES: { value: TeamRole; label: string; help: string }[] = [
  { value: "member", label: "Member", help: "Inherits the permissions given to the team" },
  { value: "creator", label: "Creator", help: "Members, and may create repositories" },
  { value: "admin", label: "Admin", help: "Full administration of the organisation" },
];

export function teamRoute(org: string, team: string): string {
  return `/organization/${encodeURIComponent(org)}/teams/${encodeURIComponent(team)}`;
}

/** Sets a team's role on repositories, one call per repository (the API has no bulk call for teams). */
export async function applyTeamRoles(team: string, changes: RoleChanges): Promise<void> {
  const failures: string[] = [];
  for (const [repository, role] of Object.entries(changes)) {
    const path = `/repository/${repoPath(repository)}/permissions/team/${encodeURIComponent(team)}`;
    try {
      if (role) await api.put(path, { role });
      else await api.del(path);
    } catch (e) {
      if (!(role === null && (e as { status?: number }).status === 404)) failures.push(`${repository}: ${(e as Error).message}`);
    }
  }
  if (failures.length) throw new Error(failures.join("; "));
}

function CreateTeamWizard({ org, onClose }: { org: string; onClose: () => void }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [role, setRole] = useState<TeamRole>("member");
  const [repositories, setRepositories] = useState<RoleChanges>({});
  const [members, setMembers] = useState<Entity[]>([]);
  const [pickText, setPickText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const problem = name ? shortNameProblem(name) : null;
  const granted = Object.entries(repositories).filter(([, r]) => r);
  const finish = async () => {
    setError(null);
    try {
      await api.post(`/organization/${encodeURIComponent(org)}/team/`, { name, role, description });
    } catch (e) {
      setError((e as Error).message);
      return;
    }
    try {
      await applyTeamRoles(name, Object.fromEntries(granted));
      for (const member of members) {
        await api.put(`/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(name)}/members/${encodeURIComponent(member.name)}`);
      }
      toast("success", `Successfully created new team: ${name}`);
    } catch (e) {
      toast("danger", `Team ${name} was created, but: ${(e as Error).message}`);
    }
    await queryClient.invalidateQueries({ queryKey: ["teams", org] });
    onClose();
  };
  return (
    <Modal isOpen variant="large" onClose={onClose} aria-labelledby="team-wizard-title">
      <ModalHeader title="Create team" labelId="team-wizard-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="team-wizard-error" /> : null}
        <Wizard onClose={onClose} onSave={() => void finish()} height={560} navAriaLabel="Create team steps">
          <WizardStep name="Team name and description" id="team-name" footer={{ isNextDisabled: !name || !!problem }}>
            <Form onSubmit={(e) => e.preventDefault()}>
              <FormGroup label="Team name" isRequired fieldId="team-name-input">
                <TextInput id="team-name-input" value={name} onChange={(_e, v) => setName(v)} validated={problem ? "error" : "default"} />
                <FormHelperText>
                  <HelperText>
                    <HelperTextItem variant={problem ? "error" : "default"}>{problem ?? "Lowercase letters, digits and '_', starting with a letter"}</HelperTextItem>
                  </HelperText>
                </FormHelperText>
              </FormGroup>
              <FormGroup label="Description" fieldId="team-description">
                <TextArea id="team-description" value={description} onChange={(_e, v) => setDescription(v)} resizeOrientation="vertical" />
              </FormGroup>
              <FormGroup label="Team role" fieldId="team-role">
                <FormSelect id="team-role" value={role} onChange={(_e, v) => setRole(v as TeamRole)}>
                  {TEAM_ROLES.map((r) => <FormSelectOption key={r.value} value={r.value} label={`${r.label}: ${r.help}`} />)}
                </FormSelect>
              </FormGroup>
            </Form>
          </WizardStep>
          <WizardStep name="Add to repository" id="team-repositories">
            <Content component="p">Give the team Read, Write or Admin on repositories of {org}; None leaves a repository out.</Content>
            <RoleTable org={org} holderName={name || "the team"} draft={repositories} onDraft={setRepositories} />
          </WizardStep>
          <WizardStep name="Add team member" id="team-members">
            <Form onSubmit={(e) => e.preventDefault()}>
              <FormGroup label="Add a user or robot account" fieldId="team-member-picker">
                <EntityPicker
                  id="team-member-picker"
                  label="Add a user or robot account"
                  namespace={org}
                  kinds={["user", "robot"]}
                  value={pickText}
                  onChange={setPickText}
                  onPick={(entity) => {
                    setPickText("");
                    setMembers((m) => (m.some((x) => x.name === entity.name) ? m : [...m, entity]));
                  }}
                />
              </FormGroup>
            </Form>
            <LabelGroup categoryName="Members" numLabels={20} data-testid="wizard-members">
              {members.map((m) => (
                <Label key={m.name} onClose={() => setMembers((list) => list.filter((x) => x.name !== m.name))} closeBtnAriaLabel={`Remove ${m.name}`}>
                  {m.name} ({kindLabel(m.kind)})
                </Label>
              ))}
            </LabelGroup>
          </WizardStep>
          <WizardStep name="Review and finish" id="team-review" footer={{ nextButtonText: "Review and finish" }}>
            <DescriptionList isHorizontal data-testid="team-review">
              <DescriptionListGroup>
                <DescriptionListTerm>Team name</DescriptionListTerm>
                <DescriptionListDescription>{name}</DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Description</DescriptionListTerm>
                <DescriptionListDescription>{description || "—"}</DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Team role</DescriptionListTerm>
                <DescriptionListDescription>{TEAM_ROLES.find((r) => r.value === role)!.label}</DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Repositories</DescriptionListTerm>
                <DescriptionListDescription>
                  {granted.length ? <List>{granted.map(([repo, r]) => <ListItem key={repo}>{repo}: {roleLabel(r)}</ListItem>)}</List> : "None"}
                </DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Members</DescriptionListTerm>
                <DescriptionListDescription>{members.length ? members.map((m) => m.name).join(", ") : "None"}</DescriptionListDescription>
              </DescriptionListGroup>
            </DescriptionList>
          </WizardStep>
        </Wizard>
      </ModalBody>
    </Modal>
  );
}

export function TeamPermissionsModal({ org, team, onClose }: { org: string; team: string; onClose: () => void }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  return (
    <Modal isOpen variant="large" onClose={onClose} aria-labelledby="team-permissions-title">
      <ModalHeader title={`Set repository permissions for ${team}`} labelId="team-permissions-title" />
      <ModalBody>
        <RoleTable
          org={org}
          holder={{ team }}
          holderName={team}
          apply={async (changes) => {
            try {
              await applyTeamRoles(team, changes);
              toast("success", "Successfully updated repository permission");
            } catch (e) {
              toast("danger", (e as Error).message);
            }
            await queryClient.invalidateQueries({ queryKey: ["teams", org] });
          }}
        />
      </ModalBody>
    </Modal>
  );
}

function TeamView({ org, isAdmin }: { org: string; isAdmin: boolean }) {
  const { readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const control = useUrlList({ sorts: ["name", "role", "members", "repositories"] as const, sort: "name" });
  const [creating, setCreating] = useState(false);
  const [permissions, setPermissions] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const teams = useServerPage<TeamRow>(control, ["teams", org], `/browse/organization/${encodeURIComponent(org)}/teams`, "teams");
  const notAdmin = isAdmin ? null : `Only administrators of ${org} can do this`;
  const setRole = async (team: string, role: TeamRole) => {
    try {
      await api.put(`/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(team)}`, { role });
      toast("success", `Team ${team} is now ${role}`);
    } catch (e) {
      toast("danger", (e as Error).message);
    }
    await queryClient.invalidateQueries({ queryKey: ["teams", org] });
  };
  return (
    <>
      <ListTable
        {...teams}
        label="Teams"
        testId="teams-table"
        control={control}
        rowKey={(r) => r.name}
        empty={{ title: "No teams", body: `${org} has no teams yet.` }}
        filterLabel="Filter teams by name"
        toolbar={readOnly ? null : (
          <ToolbarItem>
            <GuardedButton id="create-team" reason={isAdmin ? null : `Only administrators of ${org} can create teams`} onClick={() => setCreating(true)}>
              Create new team
            </GuardedButton>
          </ToolbarItem>
        )}
        actions={(r) => [
          { title: isAdmin && !readOnly ? "Manage team members" : "View team members", onClick: () => navigate(teamRoute(org, r.name)) },
          ...(readOnly ? [] : [
            refused("Set repository permissions", notAdmin, () => setPermissions(r.name)),
            refused("Delete", notAdmin ?? (r.name === "owners" ? "The owners team holds the administrators and cannot be deleted" : null),
                    () => setDeleting(r.name)),
          ]),
        ]}
        columns={[
          { label: "Team name", sort: "name", render: (r) => <Link to={teamRoute(org, r.name)}>{r.name}</Link> },
          { label: "Members", sort: "members", initialOrder: "desc", render: (r) => r.members },
          { label: "Repositories", sort: "repositories", initialOrder: "desc", render: (r) => r.repositories },
          {
            label: "Team role", sort: "role", render: (r) => isAdmin && !readOnly && r.name !== "owners" ? (
              <FormSelect aria-label={`Role of ${r.name}`} value={r.role} onChange={(_e, v) => void setRole(r.name, v as TeamRole)}>
                {TEAM_ROLES.map((x) => <FormSelectOption key={x.value} value={x.value} label={x.label} />)}
              </FormSelect>
            ) : TEAM_ROLES.find((x) => x.value === r.role)!.label,
          },
        ]}
      />
      {creating ? <CreateTeamWizard org={org} onClose={() => setCreating(false)} /> : null}
      {permissions ? <TeamPermissionsModal org={org} team={permissions} onClose={() => setPermissions(null)} /> : null}
      {deleting ? (
        <ConfirmDelete
          title={`Delete team ${deleting}?`}
          names={[deleting]}
          typed={false}
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(`/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(deleting)}`);
            toast("success", `Deleted team ${deleting}`);
            await queryClient.invalidateQueries({ queryKey: ["teams", org] });
          }}
        />
      ) : null}
    </>
  );
}

function MembersView({ org }: { org: string }) {
  const [params, setParams] = useSearchParams();
  const kind = params.get("kind") === "user" || params.get("kind") === "robot" ? params.get("kind")! : "";
  const control = useUrlList({ sorts: ["name", "teams", "repositories"] as const, sort: "name" });
  const members = useServerPage<MemberRow>(control, ["members", org], `/browse/organization/${encodeURIComponent(org)}/members`, "members",
    { params: kind ? { kind } : {} });
  return (
    <ListTable
      {...members}
      label="Members"
      testId="members-table"
      control={control}
      rowKey={(r) => r.name}
      empty={{ title: "No members", body: "No user or robot account is in a team of this organisation." }}
      filterLabel="Filter members by name"
      toolbar={
        <ToolbarItem>
          <FormSelect id="members-kind" aria-label="Show" value={kind} onChange={(_e, v) => {
            const next = new URLSearchParams(params);
            if (v) next.set("kind", v);
            else next.delete("kind");
            next.delete("page");
            setParams(next, { replace: true });
          }}>
            <FormSelectOption value="" label="Users and robot accounts" />
            <FormSelectOption value="user" label="Users" />
            <FormSelectOption value="robot" label="Robot accounts" />
          </FormSelect>
        </ToolbarItem>
      }
      columns={[
        { label: "Name", sort: "name", render: (r) => r.name },
        { label: "Kind", render: (r) => (r.kind === "robot" ? "Robot account" : "User") },
        {
          label: "Teams", sort: "teams", initialOrder: "desc", render: (r) => (
            <LabelGroup numLabels={4}>
              {(r.teams ?? []).map((t) => <Label key={t.name} isCompact render={({ className, content }) => <Link className={className} to={teamRoute(org, t.name)}>{content}</Link>}>{t.name}</Label>)}
            </LabelGroup>
          ),
        },
        { label: "Direct repository permissions", sort: "repositories", initialOrder: "desc", render: (r) => r.repositories ?? 0 },
      ]}
    />
  );
}

function CollaboratorsView({ org }: { org: string }) {
  const control = useUrlList({ sorts: ["name", "repositories"] as const, sort: "name" });
  const collaborators = useServerPage<MemberRow>(control, ["collaborators", org],
    `/browse/organization/${encodeURIComponent(org)}/collaborators`, "collaborators");
  return (
    <ListTable
      {...collaborators}
      label="Collaborators"
      testId="collaborators-table"
      control={control}
      rowKey={(r) => r.name}
      empty={{ title: "No collaborators", body: "No user outside the teams holds a permission on a repository of this organisation." }}
      filterLabel="Filter collaborators by name"
      columns={[
        { label: "Name", sort: "name", render: (r) => r.name },
        { label: "Direct repository permissions", sort: "repositories", initialOrder: "desc", render: (r) => r.repositories ?? 0 },
      ]}
    />
  );
}

export function TeamsTab({ org, isAdmin }: { org: string; isAdmin: boolean }) {
  const [params, setParams] = useSearchParams();
  const view = params.get("view") === "members" ? "members" : params.get("view") === "collaborators" && isAdmin ? "collaborators" : "teams";
  const choose = (next: string) => setParams({ tab: "teams", ...(next === "teams" ? {} : { view: next }) });
  const collaboratorsReason = isAdmin ? null : `Only administrators of ${org} can see its collaborators`;
  return (
    <>
      <ToggleGroup aria-label="View" style={{ marginBottom: "var(--pf-t--global--spacer--sm)" }}>
        <ToggleGroupItem text="Team View" buttonId="view-teams" isSelected={view === "teams"} onChange={() => choose("teams")} />
        <ToggleGroupItem text="Members View" buttonId="view-members" isSelected={view === "members"} onChange={() => choose("members")} />
        {collaboratorsReason ? (
          <Tooltip content={collaboratorsReason}>
            <ToggleGroupItem text="Collaborators View" buttonId="view-collaborators" isDisabled aria-describedby="view-collaborators-reason" />
          </Tooltip>
        ) : (
          <ToggleGroupItem text="Collaborators View" buttonId="view-collaborators" isSelected={view === "collaborators"} onChange={() => choose("collaborators")} />
        )}
      </ToggleGroup>
      {collaboratorsReason ? <span id="view-collaborators-reason" className="pf-v6-screen-reader">{collaboratorsReason}</span> : null}
      {view === "teams" ? <TeamView org={org} isAdmin={isAdmin} /> : null}
      {view === "members" ? <MembersView org={org} /> : null}
      {view === "collaborators" ? <CollaboratorsView org={org} /> : null}
    </>
  );
}
