import { Alert, Button, Label, Pagination, SearchInput, TextInput, Toolbar, ToolbarContent, ToolbarItem, EmptyState, EmptyStateBody } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { api, ApiError, repoPath } from "../../lib/api";
import { formatDateTime, rangeParams, shortDigest } from "../../lib/dates";
import { describeChange } from "../../lib/history";
import { useDebounced } from "../../lib/useDebounced";
import { useSession } from "../../session";
import type { HistoryRow, Repository } from "../../types";

export function HistoryTab({ repository, repo }: { repository: string; repo: Repository }) {
  const { user, readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [page, setPage] = useState(1);
  const [perPage, setPerPage] = useState(25);
  const [expiring, setExpiring] = useState<HistoryRow | null>(null);
  const settledName = useDebounced(name);
  const range = rangeParams(from, to);
  const query = useMemo(
    () => ({ ...(settledName ? { filter_tag_name: `like:${settledName}` } : {}), ...range.params, page, limit: perPage }),
    [settledName, range.params.starttime, range.params.endtime, page, perPage], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const history = useQuery({
    queryKey: ["history", repository, query],
    queryFn: () => api.get<{ tags: HistoryRow[]; has_additional: boolean; page: number }>(`/repository/${repoPath(repository)}/tag/`, query),
    enabled: !range.error,
    placeholderData: keepPreviousData,
  });
  const rows = history.data?.tags ?? [];
  const canWrite = !!user && !readOnly && repo.can_write;
  const refresh = async () => {
    await queryClient.invalidateQueries({ queryKey: ["history", repository] });
    await queryClient.invalidateQueries({ queryKey: ["tags", repository] });
  };
  const restore = async (row: HistoryRow) => {
    try {
      await api.post(`/repository/${repoPath(repository)}/tag/${encodeURIComponent(row.name)}/restore`, { manifest_digest: row.manifest_digest });
      toast("success", `Restored ${row.name} to ${shortDigest(row.manifest_digest)}`);
    } catch (e) {
      toast("danger", (e as Error).message);
    }
    await refresh();
  };
  // The API pages without a total: the count is known up to the page after this one.
  const known = (page - 1) * perPage + rows.length + (history.data?.has_additional ? 1 : 0);
  return (
    <>
      <Toolbar>
        <ToolbarContent>
          <ToolbarItem>
            <SearchInput aria-label="Search history by tag name" placeholder="Tag name" value={name} onChange={(_e, v) => { setName(v); setPage(1); }} onClear={() => setName("")} />
          </ToolbarItem>
          <ToolbarItem>
            <TextInput type="date" aria-label="From date" id="history-from" value={from} onChange={(_e, v) => { setFrom(v); setPage(1); }} />
          </ToolbarItem>
          <ToolbarItem>
            <TextInput type="date" aria-label="To date" id="history-to" value={to} onChange={(_e, v) => { setTo(v); setPage(1); }} />
          </ToolbarItem>
          <ToolbarItem variant="pagination" align={{ default: "alignEnd" }}>
            <Pagination
              itemCount={known}
              page={page}
              perPage={perPage}
              onSetPage={(_e, p) => setPage(p)}
              onPerPageSelect={(_e, pp) => { setPerPage(pp); setPage(1); }}
              isCompact
              toggleTemplate={({ firstIndex, lastIndex }) => <>{firstIndex} - {lastIndex}</>}
              widgetId="history-pagination"
              titles={{ paginationAriaLabel: "History pages" }}
            />
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      {range.error ? <Alert variant="danger" isInline title={range.error} /> : null}
      {history.error ? <Alert variant="danger" isInline title={(history.error as ApiError).message} /> : null}
      <Table aria-label="Tag history" variant="compact" data-testid="history-table">
        <Thead>
          <Tr>
            <Th>Tag</Th>
            <Th>Change</Th>
            <Th>Digest</Th>
            <Th>Changed</Th>
            <Th>Ended</Th>
            {canWrite ? <Th screenReaderText="Actions" /> : null}
          </Tr>
        </Thead>
        <Tbody>
          {rows.map((row) => (
            <Tr key={`${row.name}-${row.start_ts}-${row.manifest_digest}`} data-testid={`history-${row.name}`}>
              <Td dataLabel="Tag">{row.name}</Td>
              <Td dataLabel="Change">
                {describeChange(row)} {row.is_live ? <Label isCompact color="green">live</Label> : null}
              </Td>
              <Td dataLabel="Digest" className="meridian-mono">{shortDigest(row.manifest_digest)}</Td>
              <Td dataLabel="Changed">{formatDateTime(row.start_ts)}</Td>
              <Td dataLabel="Ended">{row.end_ts ? formatDateTime(row.end_ts) : "—"}</Td>
              {canWrite ? (
                <Td dataLabel="Actions">
                  {!row.is_live ? (
                    <>
                      <Button variant="secondary" size="sm" onClick={() => void restore(row)} aria-label={`Restore ${row.name} to ${row.manifest_digest}`}>
                        Restore
                      </Button>{" "}
                      <Button variant="danger" size="sm" onClick={() => setExpiring(row)} aria-label={`Permanently delete ${row.name} at ${row.manifest_digest}`}>
                        Permanently delete
                      </Button>
                    </>
                  ) : null}
                </Td>
              ) : null}
            </Tr>
          ))}
        </Tbody>
      </Table>
      {!history.isPending && rows.length === 0 ? (
        <EmptyState titleText="No history" headingLevel="h2">
          <EmptyStateBody>No tag changed in this period.</EmptyStateBody>
        </EmptyState>
      ) : null}
      {expiring ? (
        <ConfirmDelete
          title={`Permanently delete ${expiring.name}?`}
          names={[`${expiring.name} at ${expiring.manifest_digest} (it can no longer be restored)`]}
          typed={false}
          onClose={() => setExpiring(null)}
          onConfirm={async () => {
            await api.post(`/repository/${repoPath(repository)}/tag/${encodeURIComponent(expiring.name)}/expire`, { manifest_digest: expiring.manifest_digest });
            toast("success", `Permanently deleted ${expiring.name} at ${shortDigest(expiring.manifest_digest)}`);
            await refresh();
          }}
        />
      ) : null}
    </>
  );
}
