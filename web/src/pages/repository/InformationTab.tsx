import { Alert, Button, ClipboardCopy, Content, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Form, FormGroup, TextArea, Title } from "@patternfly/react-core";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import Markdown from "react-markdown";

import { api, repoPath } from "../../lib/api";
import { formatDateTime } from "../../lib/dates";
import { safeUrl } from "../../lib/urls";
import { useSession } from "../../session";
import type { Repository } from "../../types";

/** Markdown without raw HTML (it shows as text) and with only http(s) and relative links. */
export function SafeMarkdown({ text }: { text: string }) {
  return (
    <div className="meridian-markdown" data-testid="description">
      <Markdown skipHtml={false} urlTransform={(url) => safeUrl(url) ?? (url.startsWith("#") ? url : "")} components={{
        // Raw HTML is not parsed (no rehype-raw): react-markdown renders it as literal text.
        a: ({ href, children }) => (href ? <a href={href} rel="nofollow noopener noreferrer">{children}</a> : <span>{children}</span>),
        img: ({ src, alt }) => (src ? <img src={src} alt={alt ?? ""} style={{ maxWidth: "100%" }} /> : null),
      }}>
        {text}
      </Markdown>
    </div>
  );
}

export function InformationTab({ repository, repo }: { repository: string; repo: Repository }) {
  const { config, user, readOnly, toast } = useSession();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(repo.description);
  const [error, setError] = useState<string | null>(null);
  const host = config.config.SERVER_HOSTNAME;
  const save = async () => {
    try {
      await api.put(`/repository/${repoPath(repository)}`, { description: draft });
      await queryClient.invalidateQueries({ queryKey: ["repository", repository] });
      toast("success", "Description saved");
      setEditing(false);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <>
      <Title headingLevel="h2">Description</Title>
      {editing ? (
        <Form onSubmit={(e) => { e.preventDefault(); void save(); }}>
          {error ? <Alert variant="danger" isInline title={error} /> : null}
          <FormGroup label="Description (Markdown)" fieldId="description-edit">
            <TextArea id="description-edit" value={draft} onChange={(_e, v) => setDraft(v)} rows={10} resizeOrientation="vertical" />
          </FormGroup>
          <div>
            <Button type="submit" id="save-description">Save</Button>{" "}
            <Button variant="link" onClick={() => { setEditing(false); setDraft(repo.description); }}>Cancel</Button>
          </div>
        </Form>
      ) : (
        <>
          {repo.description ? <SafeMarkdown text={repo.description} /> : <Content component="p">No description.</Content>}
          {user && !readOnly && repo.can_write ? (
            <Button variant="secondary" onClick={() => setEditing(true)} id="edit-description">Edit description</Button>
          ) : null}
        </>
      )}
      <Title headingLevel="h2" style={{ marginTop: "var(--pf-t--global--spacer--lg)" }}>Pull</Title>
      <DescriptionList>
        <DescriptionListGroup>
          <DescriptionListTerm>Podman</DescriptionListTerm>
          <DescriptionListDescription>
            <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" textAriaLabel="Podman pull command">{`podman pull ${host}/${repository}:latest`}</ClipboardCopy>
          </DescriptionListDescription>
        </DescriptionListGroup>
        <DescriptionListGroup>
          <DescriptionListTerm>Docker</DescriptionListTerm>
          <DescriptionListDescription>
            <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" textAriaLabel="Docker pull command">{`docker pull ${host}/${repository}:latest`}</ClipboardCopy>
          </DescriptionListDescription>
        </DescriptionListGroup>
        <DescriptionListGroup>
          <DescriptionListTerm>Created</DescriptionListTerm>
          <DescriptionListDescription>{formatDateTime(repo.created)}</DescriptionListDescription>
        </DescriptionListGroup>
      </DescriptionList>
    </>
  );
}
