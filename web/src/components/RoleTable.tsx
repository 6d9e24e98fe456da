// An organisation's repositories with one team's, user's or robot's role on each, paged on the
// server: a role per row, or check many and set one role on all of them. In a wizard the choices are
// kept (draft) until it finishes; elsewhere each change is applied at once.
import { Button, FormSelect, FormSelectOption, Label, ToolbarItem } from "@patternfly/react-core";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import type { RepoRole, RepositoryRoleRow } from "../types";
import { ListTable, useLocalList, useServerPage } from "./ListTable";

export const ROLE_OPTIONS: { value: string; label: string }[] = [
  { value: "", label: "None" }, { value: "read", label: "Read" }, { value: "write", label: "Write" }, { value: "admin", label: "Admin" },
];

export type RoleChanges = Record<string, RepoRole | null>;

export function roleLabel(role: RepoRole | null | undefined): string {
  return ROLE_OPTIONS.find((o) => o.value === (role ?? ""))!.label;
}

export function RoleTable({
  org,
  holder,
  holderName,
  draft,
  onDraft,
  apply,
}: {
  org: string;
  holder?: { team: string } | { member: string };
  holderName: string;
  draft?: RoleChanges;
  onDraft?: (next: RoleChanges) => void;
  apply?: (changes: RoleChanges) => Promise<void>;
}) {
  const queryClient = useQueryClient();
  const control = useLocalList({ sorts: ["name", "role", "visibility"] as const, sort: "name" });
  const [selected, setSelected] = useState<string[]>([]);
  const [bulkRole, setBulkRole] = useState("write");
  const [busy, setBusy] = useState(false);
  const repositories = useServerPage<RepositoryRoleRow>(control, ["repository-roles", org],
    `/browse/organization/${encodeURIComponent(org)}/repositories`, "repositories", { params: holder });
  const shown = (row: RepositoryRoleRow): RepoRole | null => (draft && row.name in draft ? draft[row.name] : row.role);
  const change = async (changes: RoleChanges) => {
    if (draft && onDraft) {
      onDraft({ ...draft, ...changes });
      return;
    }
    if (!apply) return;
    setBusy(true);
    try {
      await apply(changes);
    } finally {
      setBusy(false);
      await queryClient.invalidateQueries({ queryKey: ["repository-roles", org] });
    }
  };
  return (
    <ListTable
      label={`Repositories of ${org} for ${holderName}`}
      testId="role-table"
      {...repositories}
      control={control}
      rowKey={(r) => r.name}
      empty={{ title: "No repositories", body: `${org} has no repositories yet.` }}
      filterLabel="Filter repositories"
      select={{ selected, onChange: setSelected }}
      toolbar={
        <>
          <ToolbarItem>
            <FormSelect id="bulk-role" aria-label="Permission for the checked repositories" value={bulkRole} onChange={(_e, v) => setBulkRole(v)}>
              {ROLE_OPTIONS.map((o) => <FormSelectOption key={o.value} value={o.value} label={o.label} />)}
            </FormSelect>
          </ToolbarItem>
          <ToolbarItem>
            <Button
              id="apply-bulk-role"
              variant="secondary"
              isDisabled={selected.length === 0 || busy}
              isLoading={busy}
              onClick={() => void change(Object.fromEntries(selected.map((n) => [n, (bulkRole || null) as RepoRole | null]))).then(() => setSelected([]))}
            >
              Set permission{selected.length ? ` on ${selected.length}` : ""}
            </Button>
          </ToolbarItem>
        </>
      }
      columns={[
        { label: "Repository", sort: "name", render: (r) => r.name },
        { label: "Visibility", sort: "visibility", render: (r) => <Label isCompact color={r.is_public ? "blue" : "grey"}>{r.is_public ? "Public" : "Private"}</Label> },
        {
          label: "Permission", sort: "role", initialOrder: "desc", render: (r) => (
            <FormSelect
              aria-label={`Permission of ${holderName} on ${r.name}`}
              value={shown(r) ?? ""}
              isDisabled={busy}
              onChange={(_e, v) => void change({ [r.name]: (v || null) as RepoRole | null })}
            >
              {ROLE_OPTIONS.map((o) => <FormSelectOption key={o.value} value={o.value} label={o.label} />)}
            </FormSelect>
          ),
        },
      ]}
    />
  );
}
