import { Alert, Button, Content, Form, FormGroup, List, ListItem, Modal, ModalBody, ModalFooter, ModalHeader, SearchInput, TextInput } from "@patternfly/react-core";
import { useState } from "react";

/** Deleting several things asks the user to type "confirm", as Quay does. With `searchable`, every
 * name is listed (scrolling) with a search box, to check what exactly is scheduled. */
export function ConfirmDelete({
  title,
  names,
  onConfirm,
  onClose,
  typed = true,
  searchable = false,
  warning,
}: {
  title: string;
  names: string[];
  onConfirm: () => Promise<void>;
  onClose: () => void;
  typed?: boolean;
  searchable?: boolean;
  warning?: string;
}) {
  const [text, setText] = useState("");
  const [search, setSearch] = useState("");
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
  const shown = searchable ? names.filter((n) => n.includes(search)) : names.slice(0, 20);
  return (
    <Modal isOpen variant="small" onClose={onClose} aria-labelledby="confirm-delete-title">
      <ModalHeader title={title} labelId="confirm-delete-title" titleIconVariant="warning" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} /> : null}
        {warning ? <Alert variant="warning" isInline isPlain title={warning} /> : null}
        <Content component="p">This deletes{searchable ? ` ${names.length}` : ""}:</Content>
        {searchable ? (
          <SearchInput aria-label="Search what is scheduled for deletion" placeholder="Search the list" value={search}
                       onChange={(_e, v) => setSearch(v)} onClear={() => setSearch("")} />
        ) : null}
        <div style={searchable ? { maxHeight: "12rem", overflowY: "auto" } : undefined} tabIndex={searchable ? 0 : undefined}
             aria-label={searchable ? "Scheduled for deletion" : undefined} role={searchable ? "region" : undefined}>
          <List data-testid="delete-list">
            {shown.map((n) => (
              <ListItem key={n}>{n}</ListItem>
            ))}
            {!searchable && names.length > 20 ? <ListItem>and {names.length - 20} more</ListItem> : null}
            {searchable && shown.length === 0 ? <ListItem>Nothing scheduled matches “{search}”</ListItem> : null}
          </List>
        </div>
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
