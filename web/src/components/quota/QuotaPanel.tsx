import {
  Alert,
  Button,
  Content,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  Flex,
  FlexItem,
  Form,
  FormGroup,
  FormSelect,
  FormSelectOption,
  Progress,
  ProgressMeasureLocation,
  TextInput,
  Title,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { api } from "../../lib/api";
import { humanSize } from "../../lib/dates";
import { checkPercent, parseLimit, usageBar } from "../../lib/quota";
import type { QuotaReport } from "../../lib/quota";
import { useSession } from "../../session";

interface QuotaLimit { id: number; type: "Warning" | "Reject"; limit_percent: number }
interface Quota { id: number; limit_bytes: number; limit: string; limits: QuotaLimit[] }

/** An organisation's storage quota: exact usage with a bar, the quota and its Warning and Reject
 * limits; administrators change them (superusers only while a system-wide default is set). */
export function QuotaPanel({ organization, canEdit }: { organization: string; canEdit: boolean }) {
  const { toast } = useSession();
  const queryClient = useQueryClient();
  const path = `/organization/${encodeURIComponent(organization)}`;
  const report = useQuery({
    queryKey: ["quota-report", organization],
    queryFn: async () => (await api.get<{ quota_report?: QuotaReport }>(path)).quota_report ?? null,
  });
  const quotas = useQuery({ queryKey: ["quota", organization], queryFn: () => api.get<Quota[]>(`${path}/quota`) });
  const [limitText, setLimitText] = useState("");
  const [kind, setKind] = useState<"Warning" | "Reject">("Warning");
  const [percent, setPercent] = useState("80");
  const [error, setError] = useState<string | null>(null);
  const quota = quotas.data?.[0] ?? null;
  const refresh = async () => {
    await queryClient.invalidateQueries({ queryKey: ["quota", organization] });
    await queryClient.invalidateQueries({ queryKey: ["quota-report", organization] });
  };
  const act = async (what: () => Promise<unknown>, done: string) => {
    setError(null);
    try {
      await what();
      toast("success", done);
      await refresh();
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    }
  };
  const saveQuota = async () => {
    const bytes = parseLimit(limitText);
    if (bytes === null) {
      setError("Invalid limit format, use a number followed by a unit (e.g. 1GiB)");
      return;
    }
    const done = quota
      ? await act(() => api.put(`${path}/quota/${quota.id}`, { limit_bytes: bytes }), `Quota of ${organization} set to ${humanSize(bytes)}`)
      : await act(() => api.post(`${path}/quota`, { limit_bytes: bytes }), `Quota of ${organization} set to ${humanSize(bytes)}`);
    if (done) setLimitText("");
  };
  const addLimit = async () => {
    const value = checkPercent(percent);
    if (value === null || !quota) {
      setError("The threshold is a whole percent from 1 to 100");
      return;
    }
    await act(() => api.post(`${path}/quota/${quota.id}/limit`, { type: kind, threshold_percent: value }),
              `${kind} limit at ${value} % added`);
  };
  const data = report.data;
  const warning = quota?.limits.filter((l) => l.type === "Warning").map((l) => l.limit_percent).sort((a, b) => a - b)[0] ?? null;
  const bar = data ? usageBar(data, warning) : null;
  return (
    <>
      {error ? <Alert variant="danger" isInline title={error} data-testid="quota-error" /> : null}
      <Title headingLevel="h2">Storage used</Title>
      {data ? (
        <>
          {data.configured_quota ? (
            <Progress
              value={bar?.percent ?? 0}
              title={`${humanSize(data.quota_bytes)} of ${humanSize(data.configured_quota)}`}
              measureLocation={ProgressMeasureLocation.outside}
              variant={bar?.variant === "success" ? undefined : bar?.variant}
              aria-label={`Storage used by ${organization}`}
              data-testid="quota-usage"
            />
          ) : (
            <Content component="p" data-testid="quota-usage">{humanSize(data.quota_bytes)} used; no quota is set.</Content>
          )}
          <Content component="small">
            Exact: every distinct blob of the images its tags (and untagged pushes, until garbage collection) keep, counted once
            however many repositories share it.{data.default_config ? " The registry's default limit applies." : ""}
          </Content>
        </>
      ) : null}
      <Title headingLevel="h2" style={{ marginTop: "var(--pf-t--global--spacer--lg)" }}>Quota</Title>
      {quota ? (
        <DescriptionList isHorizontal isCompact>
          <DescriptionListGroup>
            <DescriptionListTerm>Quota</DescriptionListTerm>
            <DescriptionListDescription data-testid="quota-limit">{quota.limit}</DescriptionListDescription>
          </DescriptionListGroup>
        </DescriptionList>
      ) : (
        <Content component="p">No quota: {organization} may use as much storage as the registry allows.</Content>
      )}
      {canEdit ? (
        <Form onSubmit={(e) => { e.preventDefault(); void saveQuota(); }} style={{ marginTop: "var(--pf-t--global--spacer--md)" }}>
          <Flex alignItems={{ default: "alignItemsFlexEnd" }}>
            <FlexItem>
              <FormGroup label={quota ? "New quota" : "Quota"} fieldId="quota-limit-input">
                <TextInput id="quota-limit-input" value={limitText} onChange={(_e, v) => setLimitText(v)} placeholder="e.g. 10 GiB" />
              </FormGroup>
            </FlexItem>
            <FlexItem>
              <Button type="submit" id="save-quota" isDisabled={!limitText.trim()}>{quota ? "Change quota" : "Set quota"}</Button>
            </FlexItem>
            {quota ? (
              <FlexItem>
                <Button variant="link" isDanger id="remove-quota"
                        onClick={() => void act(() => api.del(`${path}/quota/${quota.id}`), `Quota of ${organization} removed`)}>
                  Remove quota
                </Button>
              </FlexItem>
            ) : null}
          </Flex>
        </Form>
      ) : null}
      {quota ? (
        <>
          <Title headingLevel="h3" style={{ marginTop: "var(--pf-t--global--spacer--lg)" }}>Limits</Title>
          <Table aria-label="Quota limits" variant="compact" data-testid="quota-limits">
            <Thead>
              <Tr>
                <Th>Action</Th>
                <Th>Threshold</Th>
                <Th>At</Th>
                <Th screenReaderText="Actions" />
              </Tr>
            </Thead>
            <Tbody>
              {quota.limits.map((l) => (
                <Tr key={l.id}>
                  <Td dataLabel="Action">{l.type === "Reject" ? "Reject pushes" : "Warn (quota_warning notifications)"}</Td>
                  <Td dataLabel="Threshold">{l.limit_percent} %</Td>
                  <Td dataLabel="At">{humanSize(Math.floor((quota.limit_bytes * l.limit_percent) / 100))}</Td>
                  <Td dataLabel="Actions">
                    {canEdit ? (
                      <Button variant="link" isDanger aria-label={`Remove the ${l.type} limit at ${l.limit_percent} %`}
                              onClick={() => void act(() => api.del(`${path}/quota/${quota.id}/limit/${l.id}`), `${l.type} limit removed`)}>
                        Remove
                      </Button>
                    ) : null}
                  </Td>
                </Tr>
              ))}
            </Tbody>
          </Table>
          {quota.limits.length === 0 ? <Content component="p">No limits: nothing is refused and nobody is warned.</Content> : null}
          {canEdit ? (
            <Form onSubmit={(e) => { e.preventDefault(); void addLimit(); }}>
              <Flex alignItems={{ default: "alignItemsFlexEnd" }}>
                <FlexItem>
                  <FormGroup label="Action" fieldId="quota-limit-kind">
                    <FormSelect id="quota-limit-kind" value={kind} onChange={(_e, v) => setKind(v as "Warning" | "Reject")}>
                      <FormSelectOption value="Warning" label="Warning" />
                      <FormSelectOption value="Reject" label="Reject" />
                    </FormSelect>
                  </FormGroup>
                </FlexItem>
                <FlexItem>
                  <FormGroup label="Threshold (%)" fieldId="quota-limit-percent">
                    <TextInput id="quota-limit-percent" value={percent} onChange={(_e, v) => setPercent(v)} inputMode="numeric" />
                  </FormGroup>
                </FlexItem>
                <FlexItem>
                  <Button type="submit" id="add-quota-limit">Add limit</Button>
                </FlexItem>
              </Flex>
            </Form>
          ) : null}
        </>
      ) : null}
    </>
  );
}
