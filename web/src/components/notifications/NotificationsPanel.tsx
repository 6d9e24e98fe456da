import {
  Alert,
  Button,
  ClipboardCopy,
  Content,
  EmptyState,
  EmptyStateBody,
  Flex,
  FlexItem,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  Label,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  TextArea,
  TextInput,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { api } from "../../lib/api";
import { formatDateTime } from "../../lib/dates";
import { EMPTY_FORM, EVENTS, eventLabel, METHODS, methodLabel, notificationBody, target } from "../../lib/notifications";
import type { Method, NotificationForm } from "../../lib/notifications";
import { useSession } from "../../session";
import { ConfirmDelete } from "../ConfirmDelete";

export interface Notification {
  uuid: string;
  title: string;
  event: string;
  method: string;
  config: Record<string, unknown>;
  event_config: Record<string, unknown>;
  number_of_failures: number;
  enabled: boolean;
  disabled_reason: string | null;
  secret: string;
  signature_header: string;
}

interface Delivery {
  at: string;
  event: string;
  event_id: string;
  attempt: number;
  ok: boolean;
  status_code: number | null;
  duration_ms: number | null;
  error: string | null;
  test: boolean;
}

/** Events and notifications of a repository (`base` = /repository/<repo>/notification) or of an
 * organisation for every repository in it (`base` = /organization/<org>/notifications): list,
 * create, test, reset, delete, and each one's delivery history. */
export function NotificationsPanel({ base, scope }: { base: string; scope: string }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const key = ["notifications", base];
  const list = useQuery({ queryKey: key, queryFn: () => api.get<{ notifications: Notification[] }>(`${base}/`) });
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Notification | null>(null);
  const [history, setHistory] = useState<Notification | null>(null);
  const [deleting, setDeleting] = useState<Notification | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: key });
  const act = async (what: () => Promise<unknown>, done: string) => {
    setError(null);
    try {
      await what();
      toast("success", done);
      await refresh();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const rows = list.data?.notifications ?? [];
  const name = (n: Notification) => n.title || eventLabel(n.event);
  return (
    <>
      <Content component="p">
        Tell other systems when something happens in {scope}: a webhook (signed with a secret of its own), Slack or
        e-mail. A notification whose deliveries keep failing disables itself; reset it once the receiver works.
      </Content>
      {error ? <Alert variant="danger" isInline title={error} data-testid="notification-error" /> : null}
      {list.error ? <Alert variant="danger" isInline title={(list.error as Error).message} /> : null}
      {rows.length === 0 && list.data ? (
        <EmptyState titleText="No notifications" headingLevel="h3">
          <EmptyStateBody>Nothing is told to anyone yet.</EmptyStateBody>
        </EmptyState>
      ) : (
        <Table aria-label="Notifications" variant="compact" data-testid="notifications-table">
          <Thead>
            <Tr>
              <Th>Title</Th>
              <Th>Event</Th>
              <Th>Notification</Th>
              <Th>Status</Th>
              <Th screenReaderText="Actions" />
            </Tr>
          </Thead>
          <Tbody>
            {rows.map((n) => (
              <Tr key={n.uuid}>
                <Td dataLabel="Title">{name(n)}</Td>
                <Td dataLabel="Event">{eventLabel(n.event)}</Td>
                <Td dataLabel="Notification">
                  {methodLabel(n.method)}: <code>{target(n.method, n.config)}</code>
                </Td>
                <Td dataLabel="Status">
                  {n.enabled ? (
                    <Label color="green" isCompact>Enabled{n.number_of_failures ? `, ${n.number_of_failures} failed` : ""}</Label>
                  ) : (
                    <>
                      <Label color="red" isCompact>Disabled</Label>{" "}
                      <span data-testid="disabled-reason">{n.disabled_reason}</span>
                    </>
                  )}
                </Td>
                <Td dataLabel="Actions" isActionCell>
                  <Flex spaceItems={{ default: "spaceItemsSm" }} flexWrap={{ default: "nowrap" }}>
                    <Button variant="secondary" size="sm" aria-label={`Test ${name(n)}`}
                            onClick={() => void act(() => api.post(`${base}/${n.uuid}/test`), `Test sent to ${name(n)}`)}>
                      Test
                    </Button>
                    {!n.enabled ? (
                      <Button variant="secondary" size="sm" aria-label={`Reset ${name(n)}`}
                              onClick={() => void act(() => api.post(`${base}/${n.uuid}`), `${name(n)} is enabled again`)}>
                        Reset
                      </Button>
                    ) : null}
                    <Button variant="link" size="sm" aria-label={`Deliveries of ${name(n)}`} onClick={() => setHistory(n)}>
                      Deliveries
                    </Button>
                    <Button variant="link" isDanger size="sm" aria-label={`Delete ${name(n)}`} onClick={() => setDeleting(n)}>
                      Delete
                    </Button>
                  </Flex>
                </Td>
              </Tr>
            ))}
          </Tbody>
        </Table>
      )}
      <Button id="create-notification" onClick={() => setCreating(true)} style={{ marginTop: "var(--pf-t--global--spacer--sm)" }}>
        Create notification
      </Button>
      {creating ? (
        <CreateNotification base={base} onClose={() => setCreating(false)} onCreated={async (n) => {
          setCreating(false);
          setCreated(n);
          toast("success", `Created notification ${name(n)}`);
          await refresh();
        }} />
      ) : null}
      {created ? <SecretShown notification={created} onClose={() => setCreated(null)} /> : null}
      {history ? <DeliveryHistory base={base} notification={history} onClose={() => setHistory(null)} /> : null}
      {deleting ? (
        <ConfirmDelete title={`Delete notification ${name(deleting)}?`} names={[name(deleting)]} typed={false}
                       onClose={() => setDeleting(null)}
                       onConfirm={async () => {
                         await api.del(`${base}/${deleting.uuid}`);
                         toast("success", `Deleted notification ${name(deleting)}`);
                         await refresh();
                       }} />
      ) : null}
    </>
  );
}

function CreateNotification({ base, onClose, onCreated }: { base: string; onClose: () => void; onCreated: (n: Notification) => Promise<void> }) {
  const [form, setForm] = useState<NotificationForm>(EMPTY_FORM);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const event = EVENTS.find((e) => e.value === form.event);
  const set = (patch: Partial<NotificationForm>) => setForm((f) => ({ ...f, ...patch }));
  const submit = async () => {
    const { body, error: problem } = notificationBody(form);
    if (!body) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onCreated(await api.post<Notification>(`${base}/`, body));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal isOpen variant="medium" onClose={onClose} aria-labelledby="create-notification-title">
      <ModalHeader title="Create notification" labelId="create-notification-title" />
      <ModalBody>
        {error ? <Alert variant="danger" isInline title={error} data-testid="create-notification-error" /> : null}
        <Form id="notification-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
          <FormGroup label="When this happens" fieldId="notification-event">
            <FormSelect id="notification-event" value={form.event} onChange={(_e, v) => set({ event: v })}>
              {EVENTS.map((e) => <FormSelectOption key={e.value} value={e.value} label={e.label} />)}
            </FormSelect>
          </FormGroup>
          {event?.days ? (
            <FormGroup label="Days before expiry" fieldId="notification-days">
              <TextInput id="notification-days" value={form.days} onChange={(_e, v) => set({ days: v })} inputMode="numeric" />
            </FormGroup>
          ) : null}
          {event?.tagFilter ? (
            <FormGroup label="Only for tags matching" fieldId="notification-tags">
              <TextInput id="notification-tags" value={form.tags} onChange={(_e, v) => set({ tags: v })} placeholder="e.g. v* release-*" />
              <FormHelperText><HelperText><HelperTextItem>Globs separated by spaces or commas; empty: every tag.</HelperTextItem></HelperText></FormHelperText>
            </FormGroup>
          ) : null}
          <FormGroup label="Then issue" fieldId="notification-method">
            <FormSelect id="notification-method" value={form.method} onChange={(_e, v) => set({ method: v as Method })}>
              {METHODS.map((m) => <FormSelectOption key={m.value} value={m.value} label={m.label} />)}
            </FormSelect>
          </FormGroup>
          {form.method === "email" ? (
            <FormGroup label="E-mail address" fieldId="notification-email" isRequired>
              <TextInput id="notification-email" type="email" value={form.email} onChange={(_e, v) => set({ email: v })} />
            </FormGroup>
          ) : (
            <FormGroup label={form.method === "slack" ? "Slack webhook URL" : "Webhook URL"} fieldId="notification-url" isRequired>
              <TextInput id="notification-url" type="url" value={form.url} onChange={(_e, v) => set({ url: v })} placeholder="https://" />
            </FormGroup>
          )}
          {form.method === "webhook" ? (
            <>
              <FormGroup label="Payload" fieldId="notification-format">
                <FormSelect id="notification-format" value={form.format} onChange={(_e, v) => set({ format: v as NotificationForm["format"] })}>
                  <FormSelectOption value="quay" label="Quay's event data (JSON)" />
                  <FormSelectOption value="cloudevents" label="CloudEvents 1.0" />
                </FormSelect>
              </FormGroup>
              <FormGroup label="Template (optional)" fieldId="notification-template">
                <TextArea id="notification-template" value={form.template} onChange={(_e, v) => set({ template: v })} rows={3}
                          placeholder='{"text": "${repository} was pushed: ${updated_tags}"}' resizeOrientation="vertical" />
                <FormHelperText><HelperText><HelperTextItem>A JSON document; {"${path}"} expressions take values from the event.</HelperTextItem></HelperText></FormHelperText>
              </FormGroup>
              <FormGroup label="Extra headers (optional)" fieldId="notification-headers">
                <TextArea id="notification-headers" value={form.headers} onChange={(_e, v) => set({ headers: v })} rows={2}
                          placeholder="Authorization: Bearer ..." resizeOrientation="vertical" />
              </FormGroup>
            </>
          ) : null}
          <FormGroup label="Title (optional)" fieldId="notification-title">
            <TextInput id="notification-title" value={form.title} onChange={(_e, v) => set({ title: v })} />
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="notification-form" id="save-notification" isLoading={busy} isDisabled={busy}>Create</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

function SecretShown({ notification, onClose }: { notification: Notification; onClose: () => void }) {
  return (
    <Modal isOpen variant="small" onClose={onClose} aria-labelledby="notification-secret-title">
      <ModalHeader title="Notification created" labelId="notification-secret-title" />
      <ModalBody>
        {notification.method === "email" ? (
          <Content component="p">Messages go to {String(notification.config.email)}.</Content>
        ) : (
          <>
            <Content component="p">
              Every request carries <code>{notification.signature_header}: sha256=…</code>, the HMAC-SHA256 of its body with
              this secret, and <code>X-Meridian-Event-Id</code> to drop repeats. Give the secret to the receiver:
            </Content>
            <ClipboardCopy isReadOnly hoverTip="Copy" clickTip="Copied" data-testid="notification-secret">{notification.secret}</ClipboardCopy>
          </>
        )}
      </ModalBody>
      <ModalFooter>
        <Button onClick={onClose} id="close-secret">Done</Button>
      </ModalFooter>
    </Modal>
  );
}

function DeliveryHistory({ base, notification, onClose }: { base: string; notification: Notification; onClose: () => void }) {
  const history = useQuery({
    queryKey: ["notification-deliveries", base, notification.uuid],
    queryFn: () => api.get<{ deliveries: Delivery[] }>(`${base}/${notification.uuid}/deliveries`),
    refetchInterval: 2000,
  });
  const rows = history.data?.deliveries ?? [];
  return (
    <Modal isOpen variant="large" onClose={onClose} aria-labelledby="deliveries-title">
      <ModalHeader title={`Deliveries of ${notification.title || eventLabel(notification.event)}`} labelId="deliveries-title" />
      <ModalBody>
        {rows.length === 0 ? (
          <Content component="p">Nothing was sent yet.</Content>
        ) : (
          <Table aria-label="Deliveries" variant="compact" data-testid="deliveries-table">
            <Thead>
              <Tr>
                <Th>Time</Th>
                <Th>Event</Th>
                <Th>Attempt</Th>
                <Th>Result</Th>
                <Th>Duration</Th>
                <Th>Error</Th>
              </Tr>
            </Thead>
            <Tbody>
              {rows.map((d, index) => (
                <Tr key={`${d.event_id}-${d.attempt}-${index}`}>
                  <Td dataLabel="Time">{formatDateTime(d.at)}</Td>
                  <Td dataLabel="Event">{eventLabel(d.event)}{d.test ? " (test)" : ""}</Td>
                  <Td dataLabel="Attempt">{d.attempt}</Td>
                  <Td dataLabel="Result">
                    <Label color={d.ok ? "green" : "red"} isCompact>{d.ok ? "Delivered" : "Failed"}{d.status_code ? ` ${d.status_code}` : ""}</Label>
                  </Td>
                  <Td dataLabel="Duration">{d.duration_ms === null ? "—" : `${d.duration_ms} ms`}</Td>
                  <Td dataLabel="Error" modifier="breakWord">{d.error ?? ""}</Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
        )}
      </ModalBody>
      <ModalFooter>
        <Flex>
          <FlexItem>
            <Button onClick={onClose} id="close-deliveries">Close</Button>
          </FlexItem>
        </Flex>
      </ModalFooter>
    </Modal>
  );
}
