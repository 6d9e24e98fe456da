// Usage logs of an organisation, a repository, the signed-in user or (superusers) the whole
// registry: From/To days, a chart of daily counts, a table paged on the server (newest first, 100 a
// page) filtered by performer and kind, and Export to an e-mail address or callback URL.
import {
  Alert,
  Button,
  Content,
  Flex,
  FlexItem,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  SearchInput,
  TextInput,
  Toolbar,
  ToolbarContent,
  ToolbarItem,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";

import { api, repoPath } from "../lib/api";
import { formatDateTime, rangeParams, toInputs } from "../lib/dates";
import { Aggregated, dailyCounts, DayCount, describeMetadata, exportTarget, kindLabel, LogEntry } from "../lib/logs";
import { useDebounced } from "../lib/useDebounced";
import { useSession } from "../session";

export type LogScope =
  | { kind: "organization"; name: string }
  | { kind: "repository"; name: string }
  | { kind: "user" }
  | { kind: "registry" };

function basePath(scope: LogScope): { list: string; aggregate: string; export: string | null } {
  if (scope.kind === "organization") {
    const base = `/organization/${encodeURIComponent(scope.name)}`;
    return { list: `${base}/logs`, aggregate: `${base}/aggregatelogs`, export: `${base}/exportlogs` };
  }
  if (scope.kind === "repository") {
    const base = `/repository/${repoPath(scope.name)}`;
    return { list: `${base}/logs`, aggregate: `${base}/aggregatelogs`, export: `${base}/exportlogs` };
  }
  if (scope.kind === "user") return { list: "/user/logs", aggregate: "/user/aggregatelogs", export: "/user/exportlogs" };
  return { list: "/superuser/logs", aggregate: "/superuser/aggregatelogs", export: null };
}

function BarChart({ days }: { days: DayCount[] }) {
  const width = 720;
  const height = 160;
  const max = Math.max(1, ...days.map((d) => d.count));
  const bar = days.length ? width / days.length : width;
  const total = days.reduce((sum, d) => sum + d.count, 0);
  return (
    <figure style={{ margin: 0 }}>
      <svg
        className="meridian-chart"
        viewBox={`0 0 ${width} ${height + 20}`}
        role="img"
        aria-label={`Entries per day: ${total} in ${days.length} days, at most ${max === 1 && total === 0 ? 0 : max} on one day`}
        data-testid="logs-chart"
      >
        <line className="meridian-chart-line" x1={0} x2={width} y1={height} y2={height} strokeWidth={1} />
        {days.map((d, i) => {
          const h = (d.count / max) * (height - 16);
          return (
            <g key={d.date} data-testid={`logs-chart-${d.date}`} data-count={d.count}>
              <title>{`${d.date}: ${d.count} ${d.count === 1 ? "entry" : "entries"}${Object.keys(d.kinds).length ? ` (${Object.entries(d.kinds).map(([k, n]) => `${kindLabel(k)} ${n}`).join(", ")})` : ""}`}</title>
              <rect className="meridian-chart-bar" x={i * bar + bar * 0.15} y={height - h} width={Math.max(1, bar * 0.7)} height={h} />
            </g>
          );
        })}
        {days.length ? (
          <>
            <text className="meridian-chart-axis" x={0} y={height + 15}>{days[0].date}</text>
            <text className="meridian-chart-axis" x={width} y={height + 15} textAnchor="end">{days[days.length - 1].date}</text>
            <text className="meridian-chart-axis" x={0} y={11}>{max}</text>
          </>
        ) : null}
      </svg>
      <figcaption className="pf-v6-screen-reader">
        {days.filter((d) => d.count).map((d) => `${d.date}: ${d.count}`).join("; ") || "No entries in this period"}
      </figcaption>
    </figure>
  );
}

function ExportModal({ path, params, onClose }: { path: string; params: Record<string, string>; onClose: () => void }) {
  const { toast } = useSession();
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const target = exportTarget(text);
  const submit = async () => {
    if (!target.ok) return;
    setBusy(true);
    setError(null);
    try {
      const query = new URLSearchParams(params).toString();
      const result = await api.post<{ export_id: string }>(`${path}${query ? `?${query}` : ""}`, target.body);
      toast("success", `Logs exported with id ${result.export_id}`);
      onClose();
    } catch (e) {
      setError(`Problem exporting logs: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="medium" onClose={onClose} aria-labelledby="export-logs-title">
      <ModalHeader title="Export usage logs" labelId="export-logs-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="export-error" /> : null}
        <Form id="export-logs-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
          <FormGroup
            label="Enter an e-mail address or callback URL (must start with http:// or https://) at which to receive the exported logs once they have been fully processed:"
            fieldId="export-callback"
          >
            <TextInput id="export-callback" value={text} onChange={(_e, v) => setText(v)} validated={text && !target.ok ? "error" : "default"} />
            <FormHelperText>
              <HelperText>
                <HelperTextItem variant={text && !target.ok ? "error" : "default"} id="export-callback-help">
                  {text && !target.ok ? target.error
                    : "The export can take a while when there are many entries; the link is sent when it is ready."}
                </HelperTextItem>
              </HelperText>
            </FormHelperText>
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button variant="primary" type="submit" form="export-logs-form" isDisabled={!target.ok || busy} isLoading={busy} id="confirm-export">
          Confirm
        </Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

function isoDay(date: Date): string {
  return toInputs(date).date;
}

export function LogsView({ scope }: { scope: LogScope }) {
  const { config, readOnly } = useSession();
  const paths = basePath(scope);
  const today = new Date();
  const weekAgo = new Date(today.getTime() - 6 * 86400_000);
  const [from, setFrom] = useState(isoDay(weekAgo));
  const [to, setTo] = useState(isoDay(today));
  const [performer, setPerformer] = useState("");
  const [kind, setKind] = useState("");
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [exporting, setExporting] = useState(false);
  const settledPerformer = useDebounced(performer.trim());
  const range = rangeParams(from, to);
  const filters = useMemo(
    () => ({ ...range.params, ...(settledPerformer ? { performer: settledPerformer } : {}), ...(kind ? { kind } : {}) }),
    [range.params.starttime, range.params.endtime, settledPerformer, kind], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const key = JSON.stringify(filters);
  const [pageKey, setPageKey] = useState(key);
  if (pageKey !== key) {
    // New filters start again at the newest entries.
    setPageKey(key);
    setCursors([undefined]);
  }
  const page = cursors.length;
  const cursor = cursors[cursors.length - 1];
  const aggregate = useQuery({
    queryKey: ["logs-aggregate", paths.aggregate, filters],
    queryFn: () => api.get<{ aggregated: Aggregated[] }>(paths.aggregate, filters),
    enabled: !range.error,
  });
  const kinds = useQuery({  // the kinds to filter by: those present in the period, whatever is filtered now
    queryKey: ["logs-kinds", paths.aggregate, range.params],
    queryFn: () => api.get<{ aggregated: Aggregated[] }>(paths.aggregate, range.params),
    enabled: !range.error,
  });
  const list = useQuery({
    queryKey: ["logs", paths.list, filters, cursor],
    queryFn: () => api.get<{ logs: LogEntry[]; next_page?: string }>(paths.list, { ...filters, next_page: cursor }),
    enabled: !range.error,
    placeholderData: keepPreviousData,
  });
  const total = (aggregate.data?.aggregated ?? []).reduce((sum, row) => sum + row.count, 0);
  const days = dailyCounts(aggregate.data?.aggregated ?? [], from, to);
  const kindOptions = [...new Set((kinds.data?.aggregated ?? []).map((a) => a.kind).concat(kind ? [kind] : []))].sort();
  const rows = list.data?.logs ?? [];
  const first = (page - 1) * 100 + 1;
  const canExport = !!paths.export && config.features.LOG_EXPORT && !readOnly;
  const error = (range.error ? new Error(range.error) : null) ?? (list.error as Error | null) ?? (aggregate.error as Error | null);
  return (
    <>
      <Toolbar>
        <ToolbarContent>
          <ToolbarItem>
            <Flex alignItems={{ default: "alignItemsCenter" }} spaceItems={{ default: "spaceItemsSm" }}>
              <FlexItem><label htmlFor="logs-from">From</label></FlexItem>
              <FlexItem><TextInput type="date" id="logs-from" value={from} onChange={(_e, v) => setFrom(v)} /></FlexItem>
              <FlexItem><label htmlFor="logs-to">To</label></FlexItem>
              <FlexItem><TextInput type="date" id="logs-to" value={to} onChange={(_e, v) => setTo(v)} /></FlexItem>
            </Flex>
          </ToolbarItem>
          <ToolbarItem>
            <SearchInput aria-label="Filter by performer" placeholder="Performer (exact name)" value={performer}
                         onChange={(_e, v) => setPerformer(v)} onClear={() => setPerformer("")} />
          </ToolbarItem>
          <ToolbarItem>
            <FormSelect id="logs-kind" aria-label="Filter by kind" value={kind} onChange={(_e, v) => setKind(v)}>
              <FormSelectOption value="" label="All kinds" />
              {kindOptions.map((k) => <FormSelectOption key={k} value={k} label={kindLabel(k)} />)}
            </FormSelect>
          </ToolbarItem>
          {canExport ? (
            <ToolbarItem>
              <Button id="export-logs" variant="secondary" onClick={() => setExporting(true)} isDisabled={!!range.error}>
                Export
              </Button>
            </ToolbarItem>
          ) : null}
        </ToolbarContent>
      </Toolbar>
      {error ? <Alert variant="danger" isInline title={error.message} data-testid="logs-error" /> : null}
      <BarChart days={days} />
      <Content component="p" data-testid="logs-summary">
        {total === 0 ? "No entries in this period." : `${total} ${total === 1 ? "entry" : "entries"} in this period; showing ${rows.length ? `${first}–${first + rows.length - 1}` : "none"}, newest first.`}
      </Content>
      <Table aria-label="Usage logs" variant="compact" data-testid="logs-table">
        <Thead>
          <Tr>
            <Th>Date and time</Th>
            <Th>Kind</Th>
            <Th>Performer</Th>
            <Th>Where</Th>
            <Th>Address</Th>
            <Th>Details</Th>
          </Tr>
        </Thead>
        <Tbody>
          {rows.map((row, index) => (
            <Tr key={`${row.datetime}-${index}`} data-testid={`log-${row.kind}`}>
              <Td dataLabel="Date and time" className="meridian-nowrap">{formatDateTime(row.datetime)}</Td>
              <Td dataLabel="Kind">{kindLabel(row.kind)}</Td>
              <Td dataLabel="Performer">{row.performer?.name ?? "—"}</Td>
              <Td dataLabel="Where">{row.repository ?? row.namespace ?? "—"}</Td>
              <Td dataLabel="Address">{row.ip ?? "—"}</Td>
              <Td dataLabel="Details" className="meridian-markdown">{describeMetadata(row.metadata)}</Td>
            </Tr>
          ))}
        </Tbody>
      </Table>
      <Flex justifyContent={{ default: "justifyContentFlexEnd" }} style={{ marginTop: "var(--pf-t--global--spacer--sm)" }}>
        <FlexItem>
          <Button variant="secondary" id="logs-newer" isDisabled={page === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
            Newer
          </Button>
        </FlexItem>
        <FlexItem><span data-testid="logs-page">Page {page}</span></FlexItem>
        <FlexItem>
          <Button variant="secondary" id="logs-older" isDisabled={!list.data?.next_page || list.isPlaceholderData}
                  onClick={() => setCursors((c) => [...c, list.data!.next_page])}>
            Older
          </Button>
        </FlexItem>
      </Flex>
      {exporting && paths.export ? <ExportModal path={paths.export} params={range.params} onClose={() => setExporting(false)} /> : null}
    </>
  );
}
