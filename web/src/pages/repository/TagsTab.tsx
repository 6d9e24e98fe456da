import {
  Alert,
  Button,
  Checkbox,
  Dropdown,
  DropdownItem,
  DropdownList,
  EmptyState,
  EmptyStateBody,
  Label,
  LabelGroup,
  MenuToggle,
  Pagination,
  SearchInput,
  Toolbar,
  ToolbarContent,
  ToolbarItem,
} from "@patternfly/react-core";
import { ActionsColumn, ExpandableRowContent, Table, Tbody, Td, Th, ThProps, Thead, Tr } from "@patternfly/react-table";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { LazyTooltip } from "../../components/LazyTooltip";
import { ChangeExpiration, EditLabels } from "../../components/tags/TagModals";
import { api, ApiError, repoPath } from "../../lib/api";
import { KIND_LABELS, platformName, summarizeReferrers } from "../../lib/artifacts";
import { formatDateTime, humanSize, shortDigest } from "../../lib/dates";
import { clampPage, filterProblem, keepSelected, nextSort } from "../../lib/filters";
import { tagListState, TagSortKey, tagsQuery, tagsQueryOptions } from "../../lib/tagsQuery";
import { useDebounced } from "../../lib/useDebounced";
import { tagRoute } from "../../lib/urls";
import { useSession } from "../../session";
import type { Repository, TagRow } from "../../types";

type SortKey = TagSortKey;

export function TagsTab({ repository, repo }: { repository: string; repo: Repository }) {
  const { config, readOnly, user, toast } = useSession();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const showRegions = !!config.features.STORAGE_REPLICATION;
  const { page, perPage, sort } = tagListState(params);
  const [text, setText] = useState(params.get("filter") ?? "");
  const [regex, setRegex] = useState(params.get("regex") === "true");
  const filter = useDebounced({ text, regex });
  const problem = filterProblem(filter);
  const [selected, setSelected] = useState<string[]>([]);
  const [expanded, setExpanded] = useState<string[]>([]);
  const [labelsFor, setLabelsFor] = useState<TagRow | null>(null);
  const [expiring, setExpiring] = useState<{ tags: string[]; current: string | null } | null>(null);
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

  const query = useMemo(() => tagsQuery(filter, { page, perPage, sort }), [filter, sort.by, sort.order, page, perPage]); // eslint-disable-line react-hooks/exhaustive-deps
  const list = useQuery({
    ...tagsQueryOptions(repository, query),
    enabled: !problem,
    placeholderData: keepPreviousData,
  });
  const rows = list.data?.tags ?? [];
  useEffect(() => {
    // After deletes, a page past the end shows the last one instead.
    if (list.data && !list.isPlaceholderData && rows.length === 0 && list.data.total > 0) {
      const last = clampPage(page, perPage, list.data.total);
      if (last !== page) update({ page: last === 1 ? null : String(last) });
    }
  }, [list.data, list.isPlaceholderData]); // eslint-disable-line react-hooks/exhaustive-deps
  const names = rows.map((t) => t.name);
  useEffect(() => setSelected((s) => keepSelected(s, names)), [names.join(",")]); // eslint-disable-line react-hooks/exhaustive-deps
  const canWrite = !!user && !readOnly && repo.can_write;
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["tags", repository] });

  const columns: { key: SortKey | null; label: string }[] = [
    { key: "name", label: "Tag" },
    { key: "digest", label: "Digest" },
    { key: "size", label: "Size" },
    { key: "last_modified", label: "Last modified" },
    { key: "expires", label: "Expires" },
    ...(showRegions ? [{ key: null, label: "Regions" }] : []),
    { key: null, label: "Security" },
  ];
  const offset = (canWrite ? 1 : 0) + 1; // selection and expand columns come first
  const sortProps = (index: number, key: SortKey): ThProps["sort"] => ({
    sortBy: { index: offset + columns.findIndex((c) => c.key === sort.by), direction: sort.order },
    onSort: () => {
      const next = nextSort(sort, key, key === "last_modified" || key === "size" ? "desc" : "asc");
      update({ sort: next.by, order: next.order, page: null });
    },
    columnIndex: offset + index,
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
      widgetId={`tags-pagination-${variant}`}
      titles={{ paginationAriaLabel: `Tag pages (${variant})` }}
    />
  );

  return (
    <>
      <Toolbar>
        <ToolbarContent>
          <ToolbarItem>
            <SearchInput aria-label="Filter tags by name" placeholder="Filter by tag name" value={text} onChange={(_e, v) => setText(v)} onClear={() => setText("")} />
          </ToolbarItem>
          <ToolbarItem>
            <Checkbox id="tags-regex" label="Regular expression" isChecked={regex} onChange={(_e, v) => setRegex(v)} />
          </ToolbarItem>
          {canWrite ? (
            <ToolbarItem>
              <Dropdown
                isOpen={bulkOpen}
                onOpenChange={setBulkOpen}
                toggle={(ref) => (
                  <MenuToggle ref={ref} onClick={() => setBulkOpen(!bulkOpen)} isExpanded={bulkOpen} isDisabled={selected.length === 0} id="tags-actions">
                    Actions{selected.length ? ` (${selected.length})` : ""}
                  </MenuToggle>
                )}
              >
                <DropdownList>
                  <DropdownItem id="bulk-expiration" onClick={() => { setBulkOpen(false); setExpiring({ tags: selected, current: null }); }}>Set expiration</DropdownItem>
                  <DropdownItem id="bulk-delete-tags" onClick={() => { setBulkOpen(false); setDeleting(selected); }}>Delete</DropdownItem>
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
      <Table aria-label="Tags" variant="compact" data-testid="tags-table" isExpandable>
        <Thead>
          <Tr>
            {canWrite ? (
              <Th select={{ onSelect: (_e, on) => setSelected(on ? names : []), isSelected: names.length > 0 && selected.length === names.length }} aria-label="Select all tags on this page" />
            ) : null}
            <Th screenReaderText="Platforms" />
            {columns.map((c, i) => (
              <Th key={c.label} sort={c.key ? sortProps(i, c.key) : undefined} modifier="wrap">
                {c.label}
              </Th>
            ))}
            {canWrite ? <Th screenReaderText="Actions" /> : null}
          </Tr>
        </Thead>
        {rows.map((t, rowIndex) => {
          const isExpanded = expanded.includes(t.name);
          const referrers = summarizeReferrers(t.referrers);
          return (
            <Tbody key={t.name} isExpanded={isExpanded}>
              <Tr data-testid={`tag-row-${t.name}`}>
                {canWrite ? (
                  <Td
                    select={{
                      rowIndex,
                      onSelect: (_e, on) => setSelected((s) => (on ? [...s, t.name] : s.filter((x) => x !== t.name))),
                      isSelected: selected.includes(t.name),
                    }}
                  />
                ) : null}
                {t.is_manifest_list ? (
                  <Td
                    expand={{
                      rowIndex,
                      isExpanded,
                      onToggle: () => setExpanded((e) => (isExpanded ? e.filter((x) => x !== t.name) : [...e, t.name])),
                      expandId: `platforms-${rowIndex}`,
                    }}
                    aria-label={`Platforms of ${t.name}`}
                  />
                ) : (
                  <Td />
                )}
                <Td dataLabel="Tag">
                  <Link to={tagRoute(repository, t.name)}>{t.name}</Link>
                  {referrers.length ? (
                    <LabelGroup numLabels={4}>
                      {referrers.map((r) => (
                        <Label key={r.kind} isCompact color="blue">
                          {KIND_LABELS[r.kind]}: {r.count}
                        </Label>
                      ))}
                    </LabelGroup>
                  ) : null}
                </Td>
                <Td dataLabel="Digest" className="meridian-mono">
                  <LazyTooltip content={t.manifest_digest}>
                    <span tabIndex={0}>{shortDigest(t.manifest_digest)}</span>
                  </LazyTooltip>
                  {t.is_manifest_list ? <Label isCompact>{t.platforms.length} platforms</Label> : null}
                </Td>
                <Td dataLabel="Size">{humanSize(t.size)}</Td>
                <Td dataLabel="Last modified">{formatDateTime(t.last_modified)}</Td>
                <Td dataLabel="Expires">
                  {canWrite ? (
                    <Button variant="link" isInline onClick={() => setExpiring({ tags: [t.name], current: t.expiration })} aria-label={`Change expiration of ${t.name}`}>
                      {formatDateTime(t.expiration)}
                    </Button>
                  ) : (
                    formatDateTime(t.expiration)
                  )}
                </Td>
                {showRegions ? (
                  <Td dataLabel="Regions">
                    {t.regions.length ? (
                      <LabelGroup numLabels={5}>
                        {t.regions.map((r) => (
                          <Label key={r} isCompact color="green">{r}</Label>
                        ))}
                      </LabelGroup>
                    ) : (
                      "replicating"
                    )}
                  </Td>
                ) : null}
                <Td dataLabel="Security">
                  <Label isCompact color="grey">Not scanned</Label>
                </Td>
                {canWrite ? (
                  <Td isActionCell>
                    <ActionsColumn
                      items={[
                        { title: "Edit labels", onClick: () => setLabelsFor(t) },
                        { title: "Change expiration", onClick: () => setExpiring({ tags: [t.name], current: t.expiration }) },
                        { title: "Delete", onClick: () => setDeleting([t.name]) },
                      ]}
                      popperProps={{ position: "right" }}
                      actionsToggle={({ onToggle, isOpen, toggleRef }) => (
                        <MenuToggle ref={toggleRef} onClick={onToggle} isExpanded={isOpen} variant="plain" aria-label={`Actions for ${t.name}`}>
                          ⋮
                        </MenuToggle>
                      )}
                    />
                  </Td>
                ) : null}
              </Tr>
              {t.is_manifest_list ? (
                <Tr isExpanded={isExpanded}>
                  <Td colSpan={columns.length + offset + (canWrite ? 1 : 0)}>
                    <ExpandableRowContent>
                      <Table aria-label={`Platforms of ${t.name}`} variant="compact" borders={false}>
                        <Thead>
                          <Tr>
                            <Th>Platform</Th>
                            <Th>Digest</Th>
                            <Th>Size</Th>
                          </Tr>
                        </Thead>
                        <Tbody>
                          {t.platforms.map((p) => (
                            <Tr key={p.digest}>
                              <Td dataLabel="Platform">{platformName(p)}</Td>
                              <Td dataLabel="Digest" className="meridian-mono">{p.digest}</Td>
                              <Td dataLabel="Size">{humanSize(p.size)}</Td>
                            </Tr>
                          ))}
                        </Tbody>
                      </Table>
                    </ExpandableRowContent>
                  </Td>
                </Tr>
              ) : null}
            </Tbody>
          );
        })}
      </Table>
      {!list.isPending && rows.length === 0 && !list.error ? (
        <EmptyState titleText="No tags" headingLevel="h2">
          <EmptyStateBody>{text ? "No tag matches the filter." : "This repository has no tags yet."}</EmptyStateBody>
        </EmptyState>
      ) : null}
      {pagination("bottom")}
      {labelsFor ? (
        <EditLabels repository={repository} tag={labelsFor.name} digest={labelsFor.manifest_digest} onClose={() => setLabelsFor(null)} onDone={() => void refresh()} />
      ) : null}
      {expiring ? (
        <ChangeExpiration repository={repository} tags={expiring.tags} current={expiring.current} onClose={() => setExpiring(null)} onDone={() => void refresh()} />
      ) : null}
      {deleting ? (
        <ConfirmDelete
          title={deleting.length === 1 ? `Delete tag ${deleting[0]}?` : `Delete ${deleting.length} tags?`}
          names={deleting}
          typed={deleting.length > 1}
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            const failures: string[] = [];
            for (const name of deleting) {
              try {
                await api.del(`/repository/${repoPath(repository)}/tag/${encodeURIComponent(name)}`);
              } catch (e) {
                failures.push(`${name}: ${(e as Error).message}`);
              }
            }
            setSelected([]);
            await refresh();
            await queryClient.invalidateQueries({ queryKey: ["history", repository] });
            if (failures.length) throw new Error(failures.join("; "));
            toast("success", deleting.length === 1 ? `Deleted tag ${deleting[0]}` : `Deleted ${deleting.length} tags`);
          }}
        />
      ) : null}
    </>
  );
}
