// Full search results: repositories, tags and digests the user may read that match, each kind paged.
import { Button, Content, EmptyState, EmptyStateBody, Flex, FlexItem, Form, Label, PageSection, SearchInput, Title } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api } from "../lib/api";
import { formatDateTime, shortDigest } from "../lib/dates";
import { searchTarget } from "../lib/urls";
import type { SearchResults } from "../types";

const PER_PAGE = 20;
type Kind = "repositories" | "tags" | "digests";
const TITLES: Record<Kind, string> = { repositories: "Repositories", tags: "Tags", digests: "Digests" };

function Results({ q, kind }: { q: string; kind: Kind }) {
  const [page, setPage] = useState(1);
  const found = useQuery({
    queryKey: ["search", kind, q, page],
    queryFn: () => api.get<SearchResults>("/search", { q, kind, page, limit: PER_PAGE }),
    placeholderData: keepPreviousData,
  });
  const data = found.data;
  const rows = (data?.[kind] ?? []) as NonNullable<SearchResults[Kind]>;
  if (found.isPending) return null;
  if (rows.length === 0 && page === 1) return null;
  return (
    <section aria-labelledby={`results-${kind}`} style={{ marginBottom: "var(--pf-t--global--spacer--xl)" }} data-testid={`results-${kind}`}>
      <Title headingLevel="h2" id={`results-${kind}`}>{TITLES[kind]}</Title>
      <Table aria-label={`${TITLES[kind]} matching ${q}`} variant="compact">
        <Thead>
          {kind === "repositories" ? <Tr><Th>Repository</Th><Th>Visibility</Th><Th>Last modified</Th></Tr>
            : kind === "tags" ? <Tr><Th>Tag</Th><Th>Repository</Th><Th>Digest</Th><Th>Last modified</Th></Tr>
            : <Tr><Th>Digest</Th><Th>Repository</Th><Th>Tags</Th><Th>Pushed</Th></Tr>}
        </Thead>
        <Tbody>
          {kind === "repositories" ? (data?.repositories ?? []).map((r) => (
            <Tr key={r.name}>
              <Td dataLabel="Repository"><Link to={searchTarget({ kind: "repository", repository: r.name })}>{r.name}</Link></Td>
              <Td dataLabel="Visibility"><Label isCompact color={r.is_public ? "blue" : "grey"}>{r.is_public ? "Public" : "Private"}</Label></Td>
              <Td dataLabel="Last modified">{formatDateTime(r.last_modified)}</Td>
            </Tr>
          )) : kind === "tags" ? (data?.tags ?? []).map((t) => (
            <Tr key={`${t.repository}:${t.name}`}>
              <Td dataLabel="Tag"><Link to={searchTarget({ kind: "tag", repository: t.repository, tag: t.name })}>{t.name}</Link></Td>
              <Td dataLabel="Repository">{t.repository}</Td>
              <Td dataLabel="Digest" className="meridian-mono">{shortDigest(t.manifest_digest)}</Td>
              <Td dataLabel="Last modified">{formatDateTime(t.last_modified)}</Td>
            </Tr>
          )) : (data?.digests ?? []).map((d) => (
            <Tr key={`${d.repository}@${d.digest}`}>
              <Td dataLabel="Digest" className="meridian-mono">
                <Link to={searchTarget({ kind: "digest", repository: d.repository, tags: d.tags })}>{d.digest}</Link>
              </Td>
              <Td dataLabel="Repository">{d.repository}</Td>
              <Td dataLabel="Tags">{d.tags.length ? d.tags.join(", ") : "untagged"}</Td>
              <Td dataLabel="Pushed">{formatDateTime(d.created)}</Td>
            </Tr>
          ))}
        </Tbody>
      </Table>
      <Flex spaceItems={{ default: "spaceItemsSm" }} style={{ marginTop: "var(--pf-t--global--spacer--sm)" }}>
        <FlexItem><Button variant="secondary" size="sm" isDisabled={page === 1} onClick={() => setPage(page - 1)} aria-label={`Previous ${TITLES[kind].toLowerCase()}`}>Previous</Button></FlexItem>
        <FlexItem><span>Page {page}</span></FlexItem>
        <FlexItem><Button variant="secondary" size="sm" isDisabled={!data?.has_additional[kind]} onClick={() => setPage(page + 1)} aria-label={`More ${TITLES[kind].toLowerCase()}`}>Next</Button></FlexItem>
      </Flex>
    </section>
  );
}

export default function SearchPage() {
  const [params, setParams] = useSearchParams();
  const q = (params.get("q") ?? "").trim();
  const [text, setText] = useState(q);
  const counts = useQuery({
    queryKey: ["search", "any", q],
    queryFn: () => api.get<SearchResults>("/search", { q, limit: 1 }),
    enabled: q.length > 0,
  });
  const nothing = counts.data && !counts.data.repositories?.length && !counts.data.tags?.length && !counts.data.digests?.length;
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Search</Title>
        <Content component="p">Repositories, tags and digests you may read. A digest matches by its start (at least four hex digits).</Content>
        <Form role="search" onSubmit={(e) => { e.preventDefault(); if (text.trim()) setParams({ q: text.trim() }); }} style={{ maxWidth: "40rem" }}>
          <SearchInput aria-label="Search the registry" value={text} onChange={(_e, v) => setText(v)} onClear={() => setText("")}
                       onSearch={() => { if (text.trim()) setParams({ q: text.trim() }); }} />
        </Form>
      </PageSection>
      <PageSection>
        {!q ? null : nothing ? (
          <EmptyState titleText="Nothing found" headingLevel="h2">
            <EmptyStateBody>No repository, tag or digest you may read matches “{q}”.</EmptyStateBody>
          </EmptyState>
        ) : (
          <div key={q}>
            <Results q={q} kind="repositories" />
            <Results q={q} kind="tags" />
            <Results q={q} kind="digests" />
          </div>
        )}
      </PageSection>
    </>
  );
}
