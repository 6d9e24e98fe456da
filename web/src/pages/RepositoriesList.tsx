import {
  Alert,
  Button,
  Checkbox,
  Content,
  Dropdown,
  DropdownItem,
  DropdownList,
  EmptyState,
  EmptyStateBody,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  Label,
  MenuToggle,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  PageSection,
  Pagination,
  Radio,
  SearchInput,
  TextArea,
  TextInput,
  Title,
  Toolbar,
  ToolbarContent,
  ToolbarItem,
} from "@patternfly/react-core";
import { ActionsColumn, Table, Tbody, Td, Th, ThProps, Thead, Tr } from "@patternfly/react-table";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { ConfirmDelete } from "../components/ConfirmDelete";
import { api, ApiError, repoPath } from "../lib/api";
import { formatDateTime, humanSize } from "../lib/dates";
import { clampPage, filterParams, filterProblem, keepSelected, nextSort, Sort } from "../lib/filters";
import { repositoryNameProblem } from "../lib/names";
import { useDebounced } from "../lib/useDebounced";
import { repositoryRoute } from "../lib/urls";
import { useSession } from "../session";
import type { Paged, RepositoryRow } from "../types";

type SortKey = "name" | "visibility" | "size" | "last_modified";
const COLUMNS: { key: SortKey; label: string }[] = [
  { key: "name", label: "Name" },
  { key: "visibility", label: "Visibility" },
  { key: "size", label: "Size" },
  { key: "last_modified", label: "Last modified" },
];

function CreateRepository({ onClose, initialNamespace }: { onClose: () => void; initialNamespace?: string }) {
  const { user, toast } = useSession();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const namespaces = user?.creatable_namespaces ?? [];
  const [namespace, setNamespace] = useState(
    namespaces.find((n) => n.name === initialNamespace)?.name ?? namespaces[0]?.name ?? "");
  const [name, setName] = useState("");
  const [visibility, setVisibility] = useState<"public" | "private">("private");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const problem = name ? repositoryNameProblem(name) : null;
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.post("/repository", { namespace, repository: name, visibility, description });
      await queryClient.invalidateQueries({ queryKey: ["repositories"] });
      toast("success", `Created repository ${namespace}/${name}`);
      onClose();
      navigate(repositoryRoute(`${namespace}/${name}`));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="medium" onClose={onClose} aria-labelledby="create-repo-title">
      <ModalHeader title="Create repository" labelId="create-repo-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="create-error" /> : null}
        <Form id="create-repository-form" onSubmit={(e) => { e.preventDefault(); if (name && !problem) void submit(); }}>
          <FormGroup label="Namespace" isRequired fieldId="create-namespace">
            <FormSelect id="create-namespace" value={namespace} onChange={(_e, v) => setNamespace(v)} aria-label="Namespace">
              {namespaces.map((n) => (
                <FormSelectOption key={n.name} value={n.name} label={n.name} />
              ))}
            </FormSelect>
          </FormGroup>
          <FormGroup label="Repository name" isRequired fieldId="create-name">
            <TextInput id="create-name" value={name} onChange={(_e, v) => setName(v)} validated={problem ? "error" : "default"} isRequired />
            <FormHelperText>
              <HelperText>
                <HelperTextItem variant={problem ? "error" : "default"}>{problem ?? "Lowercase letters, digits, '.', '_', '-' and '/'"}</HelperTextItem>
              </HelperText>
            </FormHelperText>
          </FormGroup>
          <FormGroup label="Visibility" role="radiogroup" isInline fieldId="create-visibility">
            <Radio id="create-private" name="visibility" label="Private" isChecked={visibility === "private"} onChange={() => setVisibility("private")} />
            <Radio id="create-public" name="visibility" label="Public" isChecked={visibility === "public"} onChange={() => setVisibility("public")} />
          </FormGroup>
          <FormGroup label="Description (Markdown)" fieldId="create-description">
            <TextArea id="create-description" value={description} onChange={(_e, v) => setDescription(v)} resizeOrientation="vertical" />
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button variant="primary" type="submit" form="create-repository-form" isDisabled={!namespace || !name || !!problem || busy} isLoading={busy} id="create-submit">
          Create
        </Button>
        <Button variant="link" onClick={onClose}>
          Cancel
        </Button>
      </ModalFooter>
    </Modal>
  );
}

async function setVisibility(names: string[], visibility: "public" | "private") {
  const failures: string[] = [];
  for (const name of names) {
    try {
      await api.post(`/repository/${repoPath(name)}/changevisibility`, { visibility });
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message}`);
    }
  }
  if (failures.length) throw new Error(failures.join("; "));
}

export default function RepositoriesList() {
  const { user } = useSession();
  const [params, setParams] = useSearchParams();
  const namespace = params.get("namespace") ?? "";
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Repositories</Title>
        <Content component="p">
          {user ? "Repositories you may read." : "Public repositories. Sign in to see the ones shared with you."}
          {namespace ? <> Namespace: <Label onClose={() => {
            const next = new URLSearchParams(params);
            next.delete("namespace");
            next.delete("page");
            setParams(next, { replace: true });
          }}>{namespace}</Label></> : null}
        </Content>
      </PageSection>
      <PageSection>
        <RepositoriesView />
      </PageSection>
    </>
  );
}

/** The list of repositories: all the user may read, or one namespace's (an organisation's page). */
export function RepositoriesView({ namespace: fixedNamespace }: { namespace?: string }) {
  const { user, readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const perPage = [10, 25, 50, 100].includes(Number(params.get("perPage"))) ? Number(params.get("perPage")) : 25;
  const sort: Sort<SortKey> = {
    by: (COLUMNS.find((c) => c.key === params.get("sort"))?.key ?? "name") as SortKey,
    order: params.get("order") === "desc" ? "desc" : "asc",
  };
  const namespace = fixedNamespace ?? params.get("namespace") ?? "";
  const [text, setText] = useState(params.get("filter") ?? "");
  const [regex, setRegex] = useState(params.get("regex") === "true");
  const filter = useDebounced({ text, regex });
  const problem = filterProblem(filter);
  const [selected, setSelected] = useState<string[]>([]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<string[] | null>(null);
  const [bulkOpen, setBulkOpen] = useState(false);

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === "") next.delete(k);
      else next.set(k, v);
    }
    setParams(next, { replace: true });
  };
  useEffect(() => {
    if ((params.get("filter") ?? "") !== filter.text || (params.get("regex") === "true") !== filter.regex) {
      update({ filter: filter.text, regex: filter.regex ? "true" : null, page: null });
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filter.text, filter.regex]);

  const query = useMemo(
    () => ({ ...filterParams(filter), sort: sort.by, order: sort.order, page, limit: perPage, namespace }),
    [filter, sort.by, sort.order, page, perPage, namespace],
  );
  const list = useQuery({
    queryKey: ["repositories", query],
    queryFn: () => api.get<Paged & { repositories: RepositoryRow[] }>("/browse/repositories", query),
    enabled: !problem,
    placeholderData: keepPreviousData,
  });
  const rows = list.data?.repositories ?? [];
  useEffect(() => {
    // After deletes, a page past the end shows the last one instead.
    if (list.data && !list.isPlaceholderData && rows.length === 0 && list.data.total > 0) {
      const last = clampPage(page, perPage, list.data.total);
      if (last !== page) update({ page: last === 1 ? null : String(last) });
    }
  }, [list.data, list.isPlaceholderData]); // eslint-disable-line react-hooks/exhaustive-deps
  const fullNames = rows.map((r) => `${r.namespace}/${r.name}`);
  useEffect(() => setSelected((s) => keepSelected(s, fullNames)), [fullNames.join(",")]); // eslint-disable-line react-hooks/exhaustive-deps

  const canCreate = !!user && !readOnly && (fixedNamespace
    ? user.creatable_namespaces.some((n) => n.name === fixedNamespace) : user.creatable_namespaces.length > 0);
  const adminSelected = selected.filter((n) => rows.find((r) => `${r.namespace}/${r.name}` === n)?.can_admin);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["repositories"] });
  const changeVisibility = async (names: string[], visibility: "public" | "private") => {
    try {
      await setVisibility(names, visibility);
      toast("success", `Made ${names.length === 1 ? names[0] : `${names.length} repositories`} ${visibility}`);
    } catch (e) {
      toast("danger", (e as Error).message);
    }
    await refresh();
  };

  const sortProps = (index: number, key: SortKey): ThProps["sort"] => ({
    sortBy: { index: COLUMNS.findIndex((c) => c.key === sort.by), direction: sort.order },
    onSort: () => {
      const next = nextSort(sort, key, key === "last_modified" || key === "size" ? "desc" : "asc");
      update({ sort: next.by, order: next.order, page: null });
    },
    columnIndex: index,
  });
  const pagination = (variant: "top" | "bottom") => (
    <Pagination
      itemCount={list.data?.total ?? 0}
      page={page}
      perPage={perPage}
      onSetPage={(_e, p) => update({ page: String(p) })}
      onPerPageSelect={(_e, pp) => update({ perPage: String(pp), page: null })}
      perPageOptions={[10, 25, 50, 100].map((n) => ({ title: String(n), value: n }))}
      variant={variant}
      isCompact={variant === "top"}
      widgetId={`repositories-pagination-${variant}`}
      titles={{ paginationAriaLabel: `Repository pages (${variant})` }}
    />
  );

  return (
    <>
        <Toolbar>
          <ToolbarContent>
            <ToolbarItem>
              <SearchInput
                aria-label="Filter repositories by name"
                placeholder="Filter by name"
                value={text}
                onChange={(_e, v) => setText(v)}
                onClear={() => setText("")}
              />
            </ToolbarItem>
            <ToolbarItem>
              <Checkbox id="repositories-regex" label="Regular expression" isChecked={regex} onChange={(_e, v) => setRegex(v)} />
            </ToolbarItem>
            {canCreate ? (
              <ToolbarItem>
                <Button variant="primary" onClick={() => setCreating(true)} id="create-repository">
                  Create repository
                </Button>
              </ToolbarItem>
            ) : null}
            {user && !readOnly ? (
              <ToolbarItem>
                <Dropdown
                  isOpen={bulkOpen}
                  onOpenChange={setBulkOpen}
                  toggle={(ref) => (
                    <MenuToggle ref={ref} onClick={() => setBulkOpen(!bulkOpen)} isExpanded={bulkOpen} isDisabled={adminSelected.length === 0} id="repositories-actions">
                      Actions
                    </MenuToggle>
                  )}
                >
                  <DropdownList>
                    <DropdownItem onClick={() => { setBulkOpen(false); void changeVisibility(adminSelected, "public"); }}>Make public</DropdownItem>
                    <DropdownItem onClick={() => { setBulkOpen(false); void changeVisibility(adminSelected, "private"); }}>Make private</DropdownItem>
                    <DropdownItem onClick={() => { setBulkOpen(false); setDeleting(adminSelected); }} id="bulk-delete">Delete</DropdownItem>
                  </DropdownList>
                </Dropdown>
              </ToolbarItem>
            ) : null}
            <ToolbarItem variant="pagination" align={{ default: "alignEnd" }}>
              {pagination("top")}
            </ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        {problem ? <Alert variant="danger" isInline title={problem} data-testid="filter-error" /> : null}
        {list.error ? <Alert variant="danger" isInline title={(list.error as ApiError).message} data-testid="list-error" /> : null}
        <Table aria-label="Repositories" variant="compact" data-testid="repositories-table">
          <Thead>
            <Tr>
              {user && !readOnly ? (
                <Th
                  select={{
                    onSelect: (_e, isSelecting) => setSelected(isSelecting ? fullNames : []),
                    isSelected: fullNames.length > 0 && selected.length === fullNames.length,
                  }}
                  aria-label="Select all on this page"
                />
              ) : null}
              {COLUMNS.map((c, i) => (
                <Th key={c.key} sort={sortProps(i, c.key)} modifier="wrap">
                  {c.label}
                </Th>
              ))}
              {user && !readOnly ? <Th screenReaderText="Actions" /> : null}
            </Tr>
          </Thead>
          <Tbody>
            {rows.map((r, rowIndex) => {
              const full = `${r.namespace}/${r.name}`;
              return (
                <Tr key={full}>
                  {user && !readOnly ? (
                    <Td
                      select={{
                        rowIndex,
                        onSelect: (_e, isSelecting) => setSelected((s) => (isSelecting ? [...s, full] : s.filter((x) => x !== full))),
                        isSelected: selected.includes(full),
                        isDisabled: !r.can_admin,
                      }}
                    />
                  ) : null}
                  <Td dataLabel="Name">
                    <Link to={repositoryRoute(full)}>{full}</Link>
                  </Td>
                  <Td dataLabel="Visibility">{r.is_public ? "Public" : "Private"}</Td>
                  <Td dataLabel="Size">{humanSize(r.size)}</Td>
                  <Td dataLabel="Last modified">{r.last_modified ? formatDateTime(r.last_modified) : "Never"}</Td>
                  {user && !readOnly ? (
                    <Td isActionCell>
                      {r.can_admin ? (
                        <ActionsColumn
                          items={[
                            { title: r.is_public ? "Make private" : "Make public", onClick: () => void changeVisibility([full], r.is_public ? "private" : "public") },
                            { title: "Delete", onClick: () => setDeleting([full]) },
                          ]}
                          popperProps={{ position: "right" }}
                          actionsToggle={({ onToggle, isOpen, toggleRef }) => (
                            <MenuToggle ref={toggleRef} onClick={onToggle} isExpanded={isOpen} variant="plain" aria-label={`Actions for ${full}`}>
                              ⋮
                            </MenuToggle>
                          )}
                        />
                      ) : null}
                    </Td>
                  ) : null}
                </Tr>
              );
            })}
          </Tbody>
        </Table>
        {!list.isPending && rows.length === 0 && !list.error ? (
          <EmptyState titleText="No repositories" headingLevel="h2">
            <EmptyStateBody>{text ? "No repository matches the filter." : "There are no repositories you may read yet."}</EmptyStateBody>
          </EmptyState>
        ) : null}
        {pagination("bottom")}
      {creating ? <CreateRepository onClose={() => setCreating(false)} initialNamespace={namespace || undefined} /> : null}
      {deleting ? (
        <ConfirmDelete
          title={deleting.length === 1 ? "Delete repository?" : `Delete ${deleting.length} repositories?`}
          names={deleting}
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            const failures: string[] = [];
            for (const name of deleting) {
              try {
                await api.del(`/repository/${repoPath(name)}`);
              } catch (e) {
                failures.push(`${name}: ${(e as Error).message}`);
              }
            }
            setSelected([]);
            await refresh();
            if (failures.length) throw new Error(failures.join("; "));
            toast("success", `Deleted ${deleting.length === 1 ? deleting[0] : `${deleting.length} repositories`}`);
          }}
        />
      ) : null}
    </>
  );
}
