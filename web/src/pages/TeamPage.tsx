// One team: its members, paged on the server at any size (Quay's list stops at 20), adding and
// removing users and robot accounts, and the team's repository permissions.
import {
  Breadcrumb,
  BreadcrumbItem,
  Bullseye,
  Button,
  Content,
  Label,
  PageSection,
  Spinner,
  Title,
  ToolbarItem,
} from "@patternfly/react-core";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";

import { ConfirmDelete } from "../components/ConfirmDelete";
import { EntityPicker } from "../components/EntityPicker";
import { GuardedButton } from "../components/Guarded";
import { ListTable, refused, useUrlList } from "../components/ListTable";
import { RoleTable } from "../components/RoleTable";
import { api, ApiError } from "../lib/api";
import { localPage } from "../lib/listing";
import { organizationRoute } from "../lib/urls";
import { useSession } from "../session";
import type { Entity, MemberRow, Paged, RepoRole, TeamRole } from "../types";
import NotFound from "./NotFound";
import { applyTeamRoles, TEAM_ROLES } from "./organization/TeamsTab";
import { Section } from "./repository/SettingsTab";

type MembersPage = Paged & { members: MemberRow[]; team: { name: string; role: TeamRole; description: string }; is_admin: boolean };

function TeamRepositories({ org, team }: { org: string; team: string }) {
  // Members may read the team's grants (the whole list, from the team's own endpoint); paged here.
  const control = useUrlList({ sorts: ["name", "role"] as const, sort: "name" }, "r_");
  const grants = useQuery({
    queryKey: ["team-permissions", org, team],
    queryFn: () => api.get<{ permissions: { repository: { name: string; is_public: boolean }; role: RepoRole }[] }>(
      `/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(team)}/permissions`),
  });
  const rank = { read: 1, write: 2, admin: 3 };
  const page = localPage(grants.data?.permissions ?? [], control.state, (p) => p.repository.name,
    (p, key) => (key === "role" ? rank[p.role] : p.repository.name));
  return (
    <ListTable
      label="Repository permissions of the team"
      testId="team-repositories"
      control={control}
      rows={page.rows}
      total={page.total}
      rowKey={(p) => p.repository.name}
      pending={grants.isPending}
      error={grants.error}
      empty={{ title: "No repository permissions", body: `${team} holds no permission on a repository.` }}
      filterLabel="Filter repositories"
      columns={[
        { label: "Repository", sort: "name", render: (p) => p.repository.name },
        { label: "Permission", sort: "role", render: (p) => p.role[0].toUpperCase() + p.role.slice(1) },
      ]}
    />
  );
}

export default function TeamPage() {
  const { org = "", team = "" } = useParams();
  const { readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const control = useUrlList({ sorts: ["name", "kind"] as const, sort: "name" });
  const [pick, setPick] = useState("");
  const [picked, setPicked] = useState<Entity | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const members = useQuery({
    queryKey: ["team-members", org, team, control.query],
    queryFn: () => api.get<MembersPage>(`/browse/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(team)}/members`, control.query),
    enabled: !control.problem,
    placeholderData: keepPreviousData,
  });
  if (members.error instanceof ApiError && (members.error.status === 404 || members.error.status === 403)) {
    return <NotFound what={`Team ${team} of ${org}`} />;
  }
  if (!members.data) return <Bullseye><Spinner aria-label="Loading team" /></Bullseye>;
  const { is_admin: isAdmin, team: info } = members.data;
  const canChange = isAdmin && !readOnly;
  const notAdmin = isAdmin ? null : `Only administrators of ${org} can change its teams`;
  const refresh = async () => {
    await queryClient.invalidateQueries({ queryKey: ["team-members", org, team] });
    await queryClient.invalidateQueries({ queryKey: ["teams", org] });
  };
  const add = async () => {
    if (!picked) return;
    try {
      await api.put(`/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(team)}/members/${encodeURIComponent(picked.name)}`);
      toast("success", `Added ${picked.name} to ${team}`);
      setPick("");
      setPicked(null);
    } catch (e) {
      toast("danger", (e as Error).message);
    }
    await refresh();
  };
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem render={() => <Link to="/organization">Organisations</Link>} />
          <BreadcrumbItem render={() => <Link to={organizationRoute(org, "teams")}>{org}</Link>} />
          <BreadcrumbItem isActive>{team}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">
          Team {team} <Label isCompact>{TEAM_ROLES.find((r) => r.value === info.role)?.label}</Label>
        </Title>
        {info.description ? <Content component="p">{info.description}</Content> : null}
      </PageSection>
      <PageSection>
        <Section title="Team members">
          <ListTable
            label="Team members"
            testId="team-members"
            control={control}
            rows={members.data.members}
            total={members.data.total}
            rowKey={(m) => m.name}
            pending={members.isPending}
            error={members.error}
            empty={{ title: "No members", body: `${team} has no members yet.` }}
            filterLabel="Filter members by name"
            toolbar={readOnly ? null : (
              <>
                <ToolbarItem>
                  {canChange ? (
                    <EntityPicker id="add-member" label="Add a user or robot account" namespace={org} kinds={["user", "robot"]} value={pick}
                                  onChange={(t) => { setPick(t); setPicked(null); }} onPick={(e) => { setPick(e.name); setPicked(e); }} />
                  ) : null}
                </ToolbarItem>
                <ToolbarItem>
                  <GuardedButton id="add-member-submit" reason={notAdmin ?? (picked ? null : "Pick a user or robot account first")} onClick={() => void add()}>
                    Add member
                  </GuardedButton>
                </ToolbarItem>
              </>
            )}
            actions={readOnly ? undefined : (m) => [refused("Remove from team", notAdmin, () => setRemoving(m.name))]}
            columns={[
              { label: "Name", sort: "name", render: (m) => m.name },
              { label: "Kind", sort: "kind", render: (m) => (m.kind === "robot" ? "Robot account" : "User") },
            ]}
          />
        </Section>
        <Section title="Repository permissions">
          {canChange ? (
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
                await queryClient.invalidateQueries({ queryKey: ["team-permissions", org, team] });
              }}
            />
          ) : (
            <TeamRepositories org={org} team={team} />
          )}
        </Section>
        <Button variant="link" component={(props: object) => <Link {...props} to={organizationRoute(org, "teams")} />}>
          Back to the teams of {org}
        </Button>
      </PageSection>
      {removing ? (
        <ConfirmDelete
          title={`Remove ${removing} from ${team}?`}
          names={[removing]}
          typed={false}
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            await api.del(`/organization/${encodeURIComponent(org)}/team/${encodeURIComponent(team)}/members/${encodeURIComponent(removing)}`);
            toast("success", `Removed ${removing} from ${team}`);
            await refresh();
          }}
        />
      ) : null}
    </>
  );
}
