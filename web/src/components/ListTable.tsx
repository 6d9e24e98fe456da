// Every list of the organisation and superuser pages: a toolbar (filter, the page's own buttons,
// pagination), a table sorted by clicking its headers, optional selection, kebab actions and
// expandable rows, and its empty, loading and error states. The state lives in the URL for pages
// (shareable, back button) or locally for lists inside dialogs; the server filters, sorts and pages
// (useServerPage asks it for one page), or lib/listing.ts's localPage does for the few small lists
// the API gives whole.
import {
  Alert,
  Bullseye,
  Checkbox,
  EmptyState,
  EmptyStateBody,
  MenuToggle,
  Pagination,
  SearchInput,
  Spinner,
  Toolbar,
  ToolbarContent,
  ToolbarItem,
} from "@patternfly/react-core";
import { ActionsColumn, ExpandableRowContent, IAction, Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { ReactNode, useEffect, useMemo, useState } from "react";
import { useSearchParams } from "react-router-dom";

import { api } from "../lib/api";
import { filterProblem } from "../lib/filters";
import { listQuery, ListSpec, ListState, PER_PAGE_OPTIONS, readList, writeList } from "../lib/listing";
import { useDebounced } from "../lib/useDebounced";
import type { Paged } from "../types";

export interface ListControl<K extends string> {
  spec: ListSpec<K>;
  state: ListState<K>;
  text: string;
  setText: (text: string) => void;
  setRegex: (regex: boolean) => void;
  set: (changes: Partial<ListState<K>>) => void;
  problem: string | null;
  query: Record<string, string | number>;
}

function useTypedFilter<K extends string>(state: ListState<K>, set: (changes: Partial<ListState<K>>) => void) {
  const [text, setText] = useState(state.filter.text);
  const settled = useDebounced(text);
  useEffect(() => {
    if (settled !== state.filter.text) set({ filter: { ...state.filter, text: settled }, page: 1 });
  }, [settled]); // eslint-disable-line react-hooks/exhaustive-deps
  return { text, setText };
}

/** A list whose state is in the URL, its parameters prefixed with `prefix`. */
export function useUrlList<K extends string>(spec: ListSpec<K>, prefix = ""): ListControl<K> {
  const [params, setParams] = useSearchParams();
  const state = readList(params, spec, prefix);
  const set = (changes: Partial<ListState<K>>) => {
    setParams((current) => {
      const next = new URLSearchParams(current);
      const written = writeList({ ...readList(current, spec, prefix), ...changes }, spec, prefix);
      for (const [key, value] of Object.entries(written)) {
        if (value === null) next.delete(key);
        else next.set(key, value);
      }
      return next;
    }, { replace: true });
  };
  const { text, setText } = useTypedFilter(state, set);
  const problem = filterProblem({ text: state.filter.text, regex: state.filter.regex });
  const query = useMemo(() => listQuery(state), [JSON.stringify(state)]); // eslint-disable-line react-hooks/exhaustive-deps
  return { spec, state, text, setText, setRegex: (regex) => set({ filter: { ...state.filter, regex }, page: 1 }), set, problem, query };
}

/** A list inside a dialog: the same state, kept in the component. */
export function useLocalList<K extends string>(spec: ListSpec<K>, perPage = 10): ListControl<K> {
  const [state, setState] = useState<ListState<K>>({ page: 1, perPage, sort: spec.sort, order: spec.order ?? "asc", filter: { text: "", regex: false } });
  const set = (changes: Partial<ListState<K>>) => setState((current) => ({ ...current, ...changes }));
  const { text, setText } = useTypedFilter(state, set);
  const problem = filterProblem(state.filter);
  const query = useMemo(() => listQuery(state), [state]);
  return { spec, state, text, setText, setRegex: (regex) => set({ filter: { ...state.filter, regex }, page: 1 }), set, problem, query };
}

/** What a ListTable shows of a list: one page of rows, the list's total, and whether it is loading or failed
 * (the names are ListTable's props, so a page spreads into it: `<ListTable {...page} … />`). */
export interface ListPage<T> {
  rows: T[];
  total: number;
  pending: boolean;
  error: unknown;
}

/** One page of a list the server filters, sorts and pages: GET `path` with the list's query and
 * `params`, answering `{ total, [field]: rows }`. Cached under `[...key, query]` (invalidate with
 * `key`), the previous page kept on screen while the next loads, nothing asked while the filter is
 * invalid or `enabled` is false (then it is not pending either). */
export function useServerPage<T>(
  control: Pick<ListControl<string>, "query" | "problem">,
  key: readonly unknown[],
  path: string,
  field: string,
  { params, enabled = true }: { params?: Record<string, string>; enabled?: boolean } = {},
): ListPage<T> {
  const query = { ...control.query, ...params };
  const list = useQuery({
    queryKey: [...key, query],
    queryFn: () => api.get<Paged & Record<string, T[]>>(path, query),
    enabled: enabled && !control.problem,
    placeholderData: keepPreviousData,
  });
  return { rows: list.data?.[field] ?? [], total: list.data?.total ?? 0, pending: enabled && list.isPending, error: list.error };
}

export interface Column<T, K extends string> {
  label: string;
  sort?: K;
  /** The first click on a date or size column shows the newest or largest first. */
  initialOrder?: "asc" | "desc";
  render: (row: T) => ReactNode;
  nowrap?: boolean;
  /** Long unbroken text (names, e-mail addresses) may break anywhere rather than widen the table. */
  breakAnywhere?: boolean;
}

export interface ListTableProps<T, K extends string> {
  label: string;
  testId?: string;
  control: ListControl<K>;
  columns: Column<T, K>[];
  rows: T[];
  total: number;
  rowKey: (row: T) => string;
  /** What the row is called in its kebab's label (default: its key). */
  rowLabel?: (row: T) => string;
  pending: boolean;
  error: unknown;
  empty: { title: string; body: string };
  filterLabel?: string;
  regex?: boolean;
  toolbar?: ReactNode;
  select?: { selected: string[]; onChange: (next: string[]) => void; disabled?: (row: T) => boolean };
  actions?: (row: T) => IAction[] | null;
  expand?: (row: T) => ReactNode;
  compact?: boolean;
  /** Narrower cell padding and sort buttons, for lists with many columns that must fit beside the
   * sidebar in a 1366 px window (the organisations list). */
  dense?: boolean;
}

function cellClass<T, K extends string>(c: Column<T, K>): string | undefined {
  return [c.nowrap ? "meridian-nowrap" : "", c.breakAnywhere ? "meridian-break-anywhere" : ""].filter(Boolean).join(" ") || undefined;
}

export function ListTable<T, K extends string>(props: ListTableProps<T, K>) {
  const { control, columns, rows, select, actions, expand } = props;
  const { state } = control;
  const [expanded, setExpanded] = useState<string[]>([]);
  const keys = rows.map(props.rowKey);
  const idBase = props.testId ?? props.label.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  // A page past the end (after deletes) shows the last one instead.
  useEffect(() => {
    if (!props.pending && rows.length === 0 && props.total > 0 && state.page > 1) {
      control.set({ page: Math.max(1, Math.ceil(props.total / state.perPage)) });
    }
  }, [props.pending, rows.length, props.total]); // eslint-disable-line react-hooks/exhaustive-deps
  const sortIndex = columns.findIndex((c) => c.sort === state.sort);
  const pagination = (variant: "top" | "bottom") => (
    <Pagination
      itemCount={props.total}
      page={state.page}
      perPage={state.perPage}
      onSetPage={(_e, page) => control.set({ page })}
      onPerPageSelect={(_e, perPage) => control.set({ perPage, page: 1 })}
      perPageOptions={PER_PAGE_OPTIONS.map((n) => ({ title: String(n), value: n }))}
      variant={variant}
      isCompact={variant === "top"}
      widgetId={`${idBase}-pagination-${variant}`}
      titles={{ paginationAriaLabel: `${props.label} pages (${variant})` }}
    />
  );
  const error = props.error as Error | null;
  return (
    <>
      <Toolbar>
        <ToolbarContent>
          {props.filterLabel ? (
            <ToolbarItem>
              <SearchInput
                aria-label={props.filterLabel}
                placeholder={props.filterLabel}
                value={control.text}
                onChange={(_e, v) => control.setText(v)}
                onClear={() => control.setText("")}
              />
            </ToolbarItem>
          ) : null}
          {props.filterLabel && props.regex ? (
            <ToolbarItem>
              <Checkbox id={`${idBase}-regex`} label="Regular expression" isChecked={state.filter.regex} onChange={(_e, v) => control.setRegex(v)} />
            </ToolbarItem>
          ) : null}
          {props.toolbar}
          <ToolbarItem variant="pagination" align={{ default: "alignEnd" }}>
            {pagination("top")}
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      {control.problem ? <Alert variant="danger" isInline title={control.problem} data-testid={`${idBase}-filter-error`} /> : null}
      {error ? <Alert variant="danger" isInline title={error.message} data-testid={`${idBase}-error`} /> : null}
      <Table aria-label={props.label} variant={props.compact === false ? undefined : "compact"} data-testid={props.testId}
             className={props.dense ? "meridian-dense-table" : undefined}>
        <Thead>
          <Tr>
            {expand ? <Th screenReaderText="Details" /> : null}
            {select ? (
              <Th
                select={{
                  onSelect: (_e, on) => select.onChange(on ? keys.filter((_k, i) => !select.disabled?.(rows[i])) : []),
                  isSelected: keys.length > 0 && keys.every((k, i) => select.disabled?.(rows[i]) || select.selected.includes(k)),
                }}
                aria-label="Select all on this page"
              />
            ) : null}
            {columns.map((c, i) => (
              <Th
                key={c.label}
                modifier="wrap"
                sort={c.sort ? {
                  sortBy: { index: sortIndex, direction: state.order },
                  onSort: () => control.set(state.sort === c.sort
                    ? { order: state.order === "asc" ? "desc" : "asc", page: 1 }
                    : { sort: c.sort!, order: c.initialOrder ?? "asc", page: 1 }),
                  columnIndex: i,
                } : undefined}
              >
                {c.label}
              </Th>
            ))}
            {actions ? <Th screenReaderText="Actions" /> : null}
          </Tr>
        </Thead>
        {rows.map((row, rowIndex) => {
          const key = keys[rowIndex];
          const open = expanded.includes(key);
          const items = actions ? actions(row) : null;
          return (
            <Tbody key={key} isExpanded={open}>
              <Tr data-testid={`${idBase}-row-${key}`}>
                {expand ? (
                  <Td expand={{ rowIndex, isExpanded: open, onToggle: () => setExpanded((e) => (open ? e.filter((x) => x !== key) : [...e, key])),
                                expandId: `${idBase}-expand` }} />
                ) : null}
                {select ? (
                  <Td
                    select={{
                      rowIndex,
                      onSelect: (_e, on) => select.onChange(on ? [...select.selected, key] : select.selected.filter((x) => x !== key)),
                      isSelected: select.selected.includes(key),
                      isDisabled: select.disabled?.(row),
                    }}
                  />
                ) : null}
                {columns.map((c) => (
                  <Td key={c.label} dataLabel={c.label} className={cellClass(c)}>{c.render(row)}</Td>
                ))}
                {actions ? (
                  <Td isActionCell>
                    {items && items.length ? (
                      <ActionsColumn
                        items={items}
                        popperProps={{ position: "right" }}
                        actionsToggle={({ onToggle, isOpen, toggleRef }) => (
                          <MenuToggle ref={toggleRef} onClick={onToggle} isExpanded={isOpen} variant="plain" aria-label={`Actions for ${props.rowLabel ? props.rowLabel(row) : key}`}>
                            ⋮
                          </MenuToggle>
                        )}
                      />
                    ) : null}
                  </Td>
                ) : null}
              </Tr>
              {expand && open ? (
                <Tr isExpanded>
                  <Td colSpan={columns.length + (select ? 2 : 1) + (actions ? 1 : 0)}>
                    <ExpandableRowContent>{expand(row)}</ExpandableRowContent>
                  </Td>
                </Tr>
              ) : null}
            </Tbody>
          );
        })}
      </Table>
      {props.pending ? (
        <Bullseye><Spinner aria-label={`Loading ${props.label.toLowerCase()}`} size="lg" /></Bullseye>
      ) : rows.length === 0 && !error ? (
        <EmptyState titleText={control.state.filter.text ? "Nothing matches" : props.empty.title} headingLevel="h2">
          <EmptyStateBody>{control.state.filter.text ? "Nothing matches the filter." : props.empty.body}</EmptyStateBody>
        </EmptyState>
      ) : null}
      {pagination("bottom")}
    </>
  );
}

/** A kebab entry the user may not use: shown, disabled, with the reason under it. */
export function refused(title: string, reason: string | null, onClick: () => void): IAction {
  return reason ? { title, isAriaDisabled: true, description: reason, onClick: () => undefined } : { title, onClick };
}
