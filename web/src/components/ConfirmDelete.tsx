import { Alert, Button, Content, Form, FormGroup, List, ListItem, Modal, ModalBody, ModalFooter, ModalHeader, TextInput } from "@patternfly/react-core";
import { useState } from "react";

/** Deleting several things asks the user to type "confirm", as Quay does. */
export function ConfirmDelete({
  title,
  names,
  onConfirm,
  onClose,
  typed = true,
}: {
  title: string;
  names: string[];
  onConfirm: () => Promise<void>;
  onClose: () => void;
  typed?: boolean;
}) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ready = !typed || text === "confirm";
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="small" onClose={onClose} aria-labelledby="confirm-delete-title">
      <ModalHeader title={title} labelId="confirm-delete-title" titleIconVariant="warning" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} /> : null}
        <Content component="p">This deletes:</Content>
        <List data-testid="delete-list">
          {names.slice(0, 20).map((n) => (
            <ListItem key={n}>{n}</ListItem>
          ))}
          {names.length > 20 ? <ListItem>and {names.length - 20} more</ListItem> : null}
        </List>
        {typed ? (
          <Form onSubmit={(e) => { e.preventDefault(); if (ready) void run(); }}>
            <FormGroup label='Type "confirm" to delete' fieldId="confirm-text">
              <TextInput id="confirm-text" value={text} onChange={(_e, v) => setText(v)} autoComplete="off" />
            </FormGroup>
          </Form>
        ) : null}
      </ModalBody>
      <ModalFooter>
        <Button variant="danger" onClick={() => void run()} isDisabled={!ready || busy} isLoading={busy} id="confirm-delete">
          Delete
        </Button>
        <Button variant="link" onClick={onClose}>
          Cancel
        </Button>
      </ModalFooter>
    </Modal>
  );
}
