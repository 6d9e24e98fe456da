// The search box in the masthead: repositories, tags and digests the user may read, suggested as
// they type (one call per pause in typing); Enter opens the full results.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router-dom";

import { api } from "../lib/api";
import { shortDigest } from "../lib/dates";
import { searchTarget } from "../lib/urls";
import { useDebounced } from "../lib/useDebounced";
import type { SearchResults } from "../types";
import { ComboOption, Combobox } from "./Combobox";

export function HeaderSearch() {
  const navigate = useNavigate();
  const [text, setText] = useState("");
  const settled = useDebounced(text.trim(), 200);
  const results = useQuery({
    queryKey: ["search", "suggest", settled],
    queryFn: () => api.get<SearchResults>("/search", { q: settled, limit: 5 }),
    enabled: settled.length > 0,
    staleTime: 10_000,
  });
  const data = settled && results.data?.query === settled ? results.data : undefined;
  const options: (ComboOption & { target: string })[] = [
    ...(data?.repositories ?? []).map((r) => ({ key: `r:${r.name}`, group: "Repositories", text: r.name, label: r.name,
      target: searchTarget({ kind: "repository", repository: r.name }) })),
    ...(data?.tags ?? []).map((t) => ({ key: `t:${t.repository}:${t.name}`, group: "Tags", text: `${t.repository}:${t.name}`,
      label: <>{t.repository}:<strong>{t.name}</strong></>, target: searchTarget({ kind: "tag", repository: t.repository, tag: t.name }) })),
    ...(data?.digests ?? []).map((d) => ({ key: `d:${d.repository}@${d.digest}`, group: "Digests", text: `${d.repository}@${d.digest}`,
      label: <>{d.repository}@<span className="meridian-mono">{shortDigest(d.digest)}</span>{d.tags.length ? ` (${d.tags.join(", ")})` : ""}</>,
      target: searchTarget({ kind: "digest", repository: d.repository, tags: d.tags }) })),
  ];
  const targets = new Map(options.map((o) => [o.key, o.target]));
  const status = !settled ? null : results.isFetching && !data ? "Searching…" : data && options.length === 0 ? `Nothing found for “${settled}”` : null;
  return (
    <Combobox
      id="header-search"
      label="Search repositories, tags and digests"
      placeholder="Search repositories, tags, digests"
      value={text}
      onChange={setText}
      options={options}
      status={status}
      onSelect={(option) => {
        setText("");
        navigate(targets.get(option.key)!);
      }}
      onSubmit={(q) => {
        setText("");
        navigate(`/search?q=${encodeURIComponent(q)}`);
      }}
    />
  );
}
