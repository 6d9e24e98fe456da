// An organisation's Settings tab, laid out as Quay's: vertical sub-tabs
// - General: its e-mail, the time-machine window (how long deleted tags can be restored, from
//   TAG_EXPIRATION_OPTIONS), the namespace's replication locations, and deleting it;
// - Notifications: notifications for every repository of the organisation;
// - Quota (with FEATURE_QUOTA_MANAGEMENT): the exact usage with its bar, the quota and its limits.
// The section shown is in the URL (`section`), so each can be linked to.
import {
  Alert,
  Button,
  Content,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  Tab,
  Tabs,
  TabTitleText,
  TextInput,
} from "@patternfly/react-core";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router-dom";

import { ConfirmDelete } from "../../components/ConfirmDelete";
import { NotificationsPanel } from "../../components/notifications/NotificationsPanel";
import { QuotaPanel } from "../../components/quota/QuotaPanel";
import { api } from "../../lib/api";
import { durationLabel } from "../../lib/durations";
import { offeredSections, settingsSection } from "../../lib/orgSettings";
import type { SettingsSection } from "../../lib/orgSettings";
import { useSession } from "../../session";
import type { Organization } from "../../types";
import { Replication, Section } from "../repository/SettingsTab";

const SECTION_TITLES: Record<SettingsSection, string> = { general: "General settings", notifications: "Notifications", quota: "Quota" };

export function OrganizationSettingsTab({ org, organization, section, onSection }: {
  org: string;
  organization: Organization;
  section: string | null;
  onSection: (section: SettingsSection) => void;
}) {
  const { config } = useSession();
  const offered = offeredSections(!!config.features.QUOTA_MANAGEMENT);
  const active = settingsSection(section, offered);
  return (
    <div className="meridian-vertical-tabs">
      <Tabs isVertical activeKey={active} onSelect={(_e, key) => onSection(key as SettingsSection)}
            aria-label="Settings sections" mountOnEnter unmountOnExit>
        {offered.map((key) => (
          <Tab key={key} eventKey={key} title={<TabTitleText>{SECTION_TITLES[key]}</TabTitleText>} data-testid={`settings-${key}`}>
            {key === "general" ? <GeneralSettings org={org} organization={organization} /> : null}
            {key === "notifications" ? (
              <Section title="Notifications">
                <NotificationsPanel base={`/organization/${encodeURIComponent(org)}/notifications`} scope={`every repository of ${org}`} />
              </Section>
            ) : null}
            {key === "quota" ? <QuotaPanel organization={org} canEdit /> : null}
          </Tab>
        ))}
      </Tabs>
    </div>
  );
}

function GeneralSettings({ org, organization }: { org: string; organization: Organization }) {
  const { config, toast } = useSession();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [email, setEmail] = useState(organization.email ?? "");
  const [timeMachine, setTimeMachine] = useState(String(organization.tag_expiration_s ?? ""));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const options = organization.tag_expiration_options_s ?? [];
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.put(`/organization/${encodeURIComponent(org)}`, { email: email || null, tag_expiration_s: Number(timeMachine) });
      toast("success", `Saved the settings of ${org}`);
      await queryClient.invalidateQueries({ queryKey: ["organization", org] });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Section title="General settings">
        {error ? <Alert variant="danger" isInline title={error} data-testid="settings-error" /> : null}
        <Form id="org-settings-form" style={{ maxWidth: "36rem" }} onSubmit={(e) => { e.preventDefault(); void save(); }}>
          <FormGroup label="Organisation e-mail" fieldId="org-settings-email">
            <TextInput id="org-settings-email" type="email" value={email} onChange={(_e, v) => setEmail(v)} />
          </FormGroup>
          <FormGroup label="Time machine" fieldId="org-settings-expiration">
            <FormSelect id="org-settings-expiration" value={timeMachine} onChange={(_e, v) => setTimeMachine(v)}>
              {options.map((seconds) => <FormSelectOption key={seconds} value={String(seconds)} label={durationLabel(seconds)} />)}
            </FormSelect>
            <FormHelperText>
              <HelperText>
                <HelperTextItem>How long deleted and moved tags can be restored from Tag history before garbage collection reclaims them.</HelperTextItem>
              </HelperText>
            </FormHelperText>
          </FormGroup>
          <div>
            <Button type="submit" id="save-org-settings" isLoading={busy} isDisabled={busy}>Save</Button>
          </div>
        </Form>
      </Section>
      {config.features.STORAGE_REPLICATION ? <Replication namespace={org} /> : null}
      <Section title="Delete organisation">
        <Content component="p">Deleting removes {org} with its repositories, teams and robot accounts at once; storage is reclaimed by garbage collection.</Content>
        <Button variant="danger" id="delete-organization" onClick={() => setDeleting(true)}>Delete organisation</Button>
      </Section>
      {deleting ? (
        <ConfirmDelete
          title={`Delete organisation ${org}?`}
          names={[org]}
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.del(`/organization/${encodeURIComponent(org)}`);
            toast("success", `Deleted organisation ${org}`);
            await queryClient.invalidateQueries({ queryKey: ["organizations"] });
            await queryClient.invalidateQueries({ queryKey: ["session"] });
            navigate("/organization");
          }}
        />
      ) : null}
    </>
  );
}
