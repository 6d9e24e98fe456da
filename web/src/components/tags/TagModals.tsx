import {
  Alert,
  Button,
  Checkbox,
  Flex,
  FlexItem,
  Form,
  FormGroup,
  FormHelperText,
  HelperText,
  HelperTextItem,
  Label,
  LabelGroup,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  Spinner,
  TextInput,
} from "@patternfly/react-core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";

import { api, repoPath } from "../../lib/api";
import { checkExpiration, formatDateTime, toInputs } from "../../lib/dates";
import { Label as LabelType, labelChanges, labelText, parseLabel } from "../../lib/labels";
import { useSession } from "../../session";

export function EditLabels({ repository, tag, digest, onClose, onDone }: {
  repository: string; tag: string; digest: string; onClose: () => void; onDone: () => void;
}) {
  const { toast } = useSession();
  const labels = useQuery({
    queryKey: ["labels", repository, digest],
    queryFn: () => api.get<{ labels: LabelType[] }>(`/repository/${repoPath(repository)}/manifest/${digest}/labels`),
  });
  const [edited, setEdited] = useState<string[] | null>(null);
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const existing = labels.data?.labels ?? [];
  const current = edited ?? existing.map(labelText);
  const add = () => {
    const parsed = parseLabel(text);
    if (!parsed.ok) {
      setError(parsed.error);
      return;
    }
    setError(null);
    setEdited([...current.filter((l) => l !== labelText(parsed)), labelText(parsed)]);
    setText("");
  };
  const save = async () => {
    const pending = text.trim() ? [...current, text] : current;
    const changes = labelChanges(existing, pending);
    if (changes.errors.length) {
      setError(changes.errors[0]);
      return;
    }
    setBusy(true);
    try {
      const base = `/repository/${repoPath(repository)}/manifest/${digest}/labels`;
      for (const label of changes.add) await api.post(base, { key: label.key, value: label.value });
      for (const label of changes.remove) await api.del(`${base}/${label.id}`);
      if (changes.add.length) toast("success", "Created labels successfully");
      if (changes.remove.length) toast("success", "Deleted labels successfully");
      onDone();
      onClose();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const fromImage = new Set(existing.filter((l) => l.source_type === "manifest").map(labelText));
  return (
    <Modal isOpen variant="medium" onClose={onClose} aria-labelledby="labels-title">
      <ModalHeader title={`Edit labels of ${tag}`} labelId="labels-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="label-error" /> : null}
        {labels.isPending ? <Spinner size="md" aria-label="Loading labels" /> : null}
        <LabelGroup numLabels={50} categoryName="Labels" data-testid="label-list">
          {current.map((l) => (
            <Label key={l} onClose={fromImage.has(l) ? undefined : () => setEdited(current.filter((x) => x !== l))} closeBtnAriaLabel={`Remove ${l}`}>
              {l}
            </Label>
          ))}
        </LabelGroup>
        <Form onSubmit={(e) => { e.preventDefault(); add(); }}>
          <FormGroup label="New label" fieldId="new-label">
            <Flex>
              <FlexItem grow={{ default: "grow" }}>
                <TextInput id="new-label" placeholder="key=value" value={text} onChange={(_e, v) => setText(v)} />
              </FlexItem>
              <FlexItem>
                <Button variant="secondary" onClick={add} id="add-label">Add</Button>
              </FlexItem>
            </Flex>
            <FormHelperText>
              <HelperText>
                <HelperTextItem>Labels from the image itself cannot be removed.</HelperTextItem>
              </HelperText>
            </FormHelperText>
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button variant="primary" onClick={() => void save()} isLoading={busy} isDisabled={busy || labels.isPending} id="save-labels">
          Save labels
        </Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

export function ChangeExpiration({ repository, tags, current, onClose, onDone }: {
  repository: string; tags: string[]; current: string | null; onClose: () => void; onDone: () => void;
}) {
  const { toast } = useSession();
  const initial = toInputs(current ? new Date(current) : new Date(Date.now() + 7 * 86400_000));
  const [date, setDate] = useState(initial.date);
  const [time, setTime] = useState(initial.time);
  const [clear, setClear] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    let expiration: number | null = null;
    if (!clear) {
      const checked = checkExpiration(date, time);
      if (!checked.ok) {
        setError(checked.error);
        return;
      }
      expiration = checked.epoch;
    }
    setBusy(true);
    setError(null);
    try {
      if (tags.length === 1) {
        await api.put(`/repository/${repoPath(repository)}/tag/${encodeURIComponent(tags[0])}`, { expiration });
      } else {
        await api.put(`/repository/${repoPath(repository)}/tags/expiration`, { tags, expiration });
      }
      const what = tags.length === 1 ? `tag ${tags[0]}` : `${tags.length} tags`;
      toast("success", expiration === null ? `Successfully cleared expiration for ${what}` : `Successfully set expiration for ${what} to ${formatDateTime(expiration)}`);
      onDone();
      onClose();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="small" onClose={onClose} aria-labelledby="expiration-title">
      <ModalHeader title={tags.length === 1 ? `Change expiration of ${tags[0]}` : `Set expiration of ${tags.length} tags`} labelId="expiration-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="expiration-error" /> : null}
        <Form onSubmit={(e) => { e.preventDefault(); void save(); }}>
          <FormGroup label="Date" fieldId="expiration-date">
            <TextInput id="expiration-date" type="date" value={date} onChange={(_e, v) => setDate(v)} isDisabled={clear} />
          </FormGroup>
          <FormGroup label="Time" fieldId="expiration-time">
            <TextInput id="expiration-time" type="time" value={time} onChange={(_e, v) => setTime(v)} isDisabled={clear} />
          </FormGroup>
          <Checkbox id="expiration-clear" label="Never expires (clear the expiration)" isChecked={clear} onChange={(_e, v) => setClear(v)} />
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button variant="primary" onClick={() => void save()} isLoading={busy} isDisabled={busy} id="save-expiration">
          Change expiration
        </Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}
