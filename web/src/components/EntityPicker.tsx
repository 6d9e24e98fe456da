// Picks a user, one of the organisation's robots, or one of its teams by typing the start of a name.
import { Label } from "@patternfly/react-core";
import { useQuery } from "@tanstack/react-query";

import { api } from "../lib/api";
import { useDebounced } from "../lib/useDebounced";
import type { Entity } from "../types";
import { Combobox } from "./Combobox";

const KIND_LABEL = { user: "User", robot: "Robot", team: "Team" };
const GROUPS = { user: "Users", robot: "Robot accounts", team: "Teams" };

export function EntityPicker({
  id,
  label,
  namespace,
  kinds,
  value,
  onChange,
  onPick,
}: {
  id: string;
  label: string;
  namespace?: string;
  kinds: Entity["kind"][];
  value: string;
  onChange: (text: string) => void;
  onPick: (entity: Entity) => void;
}) {
  const settled = useDebounced(value.trim(), 200);
  const found = useQuery({
    queryKey: ["entities", namespace, settled],
    queryFn: () => api.get<{ results: Entity[] }>("/entities", { prefix: settled, namespace }),
    enabled: settled.length > 0,
    staleTime: 10_000,
  });
  const results = (settled ? found.data?.results ?? [] : []).filter((e) => kinds.includes(e.kind));
  return (
    <Combobox
      id={id}
      label={label}
      placeholder={kinds.map((k) => KIND_LABEL[k].toLowerCase()).join(", ")}
      value={value}
      onChange={onChange}
      status={settled && found.data && results.length === 0 ? "No match" : null}
      options={results.map((e) => ({
        key: `${e.kind}:${e.name}`, group: GROUPS[e.kind], text: e.name,
        label: <>{e.name} <Label isCompact>{KIND_LABEL[e.kind]}</Label></>,
      }))}
      onSelect={(option) => {
        const [kind, ...rest] = option.key.split(":");
        onPick({ kind: kind as Entity["kind"], name: rest.join(":") });
      }}
    />
  );
}

export function kindLabel(kind: Entity["kind"]): string {
  return KIND_LABEL[kind];
}
