import {
  Breadcrumb,
  BreadcrumbItem,
  Bullseye,
  ClipboardCopy,
  Content,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  Label,
  LabelGroup,
  PageSection,
  Spinner,
  Title,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";

import { api, ApiError, repoPath } from "../lib/api";
import { artifactKind, KIND_LABELS, platformName } from "../lib/artifacts";
import { formatDateTime, humanSize } from "../lib/dates";
import { parseTagRoute, repositoryRoute } from "../lib/urls";
import { useSession } from "../session";
import type { ManifestDetail, TagDetail } from "../types";
import NotFound from "./NotFound";

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <PageSection>
      <Title headingLevel="h2" style={{ marginBottom: "var(--pf-t--global--spacer--sm)" }}>{title}</Title>
      {children}
    </PageSection>
  );
}

function Annotations({ values }: { values: Record<string, string> | null }) {
  if (!values || Object.keys(values).length === 0) return null;
  return (
    <LabelGroup numLabels={10} categoryName="Annotations">
      {Object.entries(values).map(([k, v]) => (
        <Label key={k} isCompact>{`${k}=${v}`}</Label>
      ))}
    </LabelGroup>
  );
}

export default function TagDetails() {
  const parsed = parseTagRoute(useParams()["*"] ?? "");
  const { config } = useSession();
  const repository = parsed?.repository ?? "";
  const tagName = parsed?.tag ?? "";
  const tag = useQuery({
    queryKey: ["tag", repository, tagName],
    queryFn: () => api.get<TagDetail>(`/repository/${repoPath(repository)}/tag/${encodeURIComponent(tagName)}`),
    enabled: !!parsed,
  });
  const digest = tag.data?.manifest_digest;
  const manifest = useQuery({
    queryKey: ["manifest", repository, digest],
    queryFn: () => api.get<ManifestDetail>(`/browse/repository/${repoPath(repository)}/manifest/${digest}`),
    enabled: !!digest,
  });
  if (!parsed || (tag.error instanceof ApiError && (tag.error.status === 404 || tag.error.status === 400))) {
    return <NotFound what={`Tag ${tagName}`} />;
  }
  if (tag.error) return <PageSection>{(tag.error as Error).message}</PageSection>;
  if (!tag.data) {
    return (
      <Bullseye>
        <Spinner aria-label="Loading tag" />
      </Bullseye>
    );
  }
  const t = tag.data;
  const m = manifest.data;
  const commands: [string, string][] = [
    ["Podman (by tag)", t.pull_commands.podman],
    ["Docker (by tag)", t.pull_commands.docker],
    ["Podman (by digest)", t.pull_commands.podman_by_digest],
    ["Docker (by digest)", t.pull_commands.docker_by_digest],
  ];
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem render={() => <Link to="/repository">Repositories</Link>} />
          <BreadcrumbItem render={() => <Link to={repositoryRoute(repository)}>{repository}</Link>} />
          <BreadcrumbItem render={() => <Link to={repositoryRoute(repository, "tags")}>Tags</Link>} />
          <BreadcrumbItem isActive>{t.name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">{repository}:{t.name}</Title>
      </PageSection>
      <Section title="Details">
        <DescriptionList isHorizontal data-testid="tag-details">
          <DescriptionListGroup><DescriptionListTerm>Name</DescriptionListTerm><DescriptionListDescription>{t.name}</DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup><DescriptionListTerm>Repository</DescriptionListTerm><DescriptionListDescription>{repository}</DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup><DescriptionListTerm>Digest</DescriptionListTerm><DescriptionListDescription className="meridian-mono">{t.manifest_digest}</DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup><DescriptionListTerm>Created</DescriptionListTerm><DescriptionListDescription>{formatDateTime(t.created)}</DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup><DescriptionListTerm>Modified</DescriptionListTerm><DescriptionListDescription>{formatDateTime(t.modified)}</DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup><DescriptionListTerm>Expires</DescriptionListTerm><DescriptionListDescription>{formatDateTime(t.expiration)}</DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup><DescriptionListTerm>Size</DescriptionListTerm><DescriptionListDescription>{humanSize(m?.size ?? t.size)}</DescriptionListDescription></DescriptionListGroup>
          {config.features.STORAGE_REPLICATION ? (
            <DescriptionListGroup>
              <DescriptionListTerm>Regions holding it</DescriptionListTerm>
              <DescriptionListDescription>
                <LabelGroup>{(m?.regions ?? []).map((r) => <Label key={r} isCompact color="green">{r}</Label>)}</LabelGroup>
              </DescriptionListDescription>
            </DescriptionListGroup>
          ) : null}
          <DescriptionListGroup><DescriptionListTerm>Security</DescriptionListTerm><DescriptionListDescription><Label isCompact color="grey">Not scanned</Label></DescriptionListDescription></DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>Labels</DescriptionListTerm>
            <DescriptionListDescription data-testid="tag-labels">
              {t.labels.length ? (
                <LabelGroup numLabels={20}>{t.labels.map((l) => <Label key={l.id} isCompact>{`${l.key}=${l.value}`}</Label>)}</LabelGroup>
              ) : "None"}
            </DescriptionListDescription>
          </DescriptionListGroup>
          {m?.annotations ? (
            <DescriptionListGroup><DescriptionListTerm>Annotations</DescriptionListTerm><DescriptionListDescription data-testid="tag-annotations"><Annotations values={m.annotations} /></DescriptionListDescription></DescriptionListGroup>
          ) : null}
        </DescriptionList>
      </Section>
      <Section title="Pull commands">
        <DescriptionList>
          {commands.map(([label, command]) => (
            <DescriptionListGroup key={label}>
              <DescriptionListTerm>{label}</DescriptionListTerm>
              <DescriptionListDescription>
                <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" textAriaLabel={`${label} pull command`}>{command}</ClipboardCopy>
              </DescriptionListDescription>
            </DescriptionListGroup>
          ))}
        </DescriptionList>
      </Section>
      {manifest.isPending ? <Spinner size="md" aria-label="Loading manifest" /> : null}
      {m && m.platforms.length ? (
        <Section title="Platforms">
          <Table aria-label="Platforms" variant="compact">
            <Thead><Tr><Th>Platform</Th><Th>Digest</Th><Th>Size</Th></Tr></Thead>
            <Tbody>
              {m.platforms.map((p) => (
                <Tr key={p.digest}>
                  <Td dataLabel="Platform">{platformName(p)}</Td>
                  <Td dataLabel="Digest" className="meridian-mono">{p.digest}</Td>
                  <Td dataLabel="Size">{humanSize(p.size)}</Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
        </Section>
      ) : null}
      {m && !m.is_manifest_list ? (
        <Section title="Layers">
          <Table aria-label="Layers" variant="compact">
            <Thead><Tr><Th>#</Th><Th>Digest</Th><Th>Media type</Th><Th>Size</Th></Tr></Thead>
            <Tbody>
              {m.layers.map((l, i) => (
                <Tr key={`${l.digest}-${i}`}>
                  <Td dataLabel="#">{i + 1}</Td>
                  <Td dataLabel="Digest" className="meridian-mono">{l.digest}</Td>
                  <Td dataLabel="Media type">{l.media_type}</Td>
                  <Td dataLabel="Size">{humanSize(l.size)}</Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
        </Section>
      ) : null}
      {m ? (
        <Section title="Referrers">
          {m.referrers.length === 0 ? (
            <Content component="p">No signatures, SBOMs or attestations refer to this manifest.</Content>
          ) : (
            m.referrers.map((group) => (
              <div key={group.artifact_type} data-testid="referrer-group" style={{ marginBottom: "var(--pf-t--global--spacer--md)" }}>
                <Title headingLevel="h3">
                  {KIND_LABELS[artifactKind(group.artifact_type)]} <span className="meridian-mono">({group.artifact_type})</span>
                </Title>
                <Table aria-label={`Referrers of type ${group.artifact_type}`} variant="compact">
                  <Thead><Tr><Th>Digest</Th><Th>Created</Th><Th>Size</Th><Th>Annotations</Th></Tr></Thead>
                  <Tbody>
                    {group.manifests.map((r) => (
                      <Tr key={r.digest}>
                        <Td dataLabel="Digest" className="meridian-mono">{r.digest}</Td>
                        <Td dataLabel="Created">{formatDateTime(r.created)}</Td>
                        <Td dataLabel="Size">{humanSize(r.size)}</Td>
                        <Td dataLabel="Annotations"><Annotations values={r.annotations} /></Td>
                      </Tr>
                    ))}
                  </Tbody>
                </Table>
              </div>
            ))
          )}
        </Section>
      ) : null}
    </>
  );
}
