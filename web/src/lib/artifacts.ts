// What a referrer is, from its artifact type (OCI 1.1 `artifactType`, else its config media type).
export type ArtifactKind = "signature" | "sbom" | "attestation" | "other";

const KINDS: [RegExp, ArtifactKind][] = [
  [/^application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json$/, "signature"],
  [/^application\/vnd\.cncf\.notary\.signature$/, "signature"],
  [/^application\/vnd\.dev\.cosign\.simplesigning\.v1\+json$/, "signature"],
  [/^application\/vnd\.dev\.sigstore\.bundle(\.v[\d.]+)?\+json/, "attestation"],
  [/^application\/vnd\.in-toto(\.[\w.-]+)?\+json$/, "attestation"],
  [/^application\/vnd\.dsse\.envelope\.v1\+json$/, "attestation"],
  [/^application\/vnd\.dev\.cosign\.artifact\.(sbom|att)\.v1\+json$/, "attestation"],
  [/^application\/(spdx\+json|vnd\.spdx\+json|spdx|vnd\.cyclonedx(\+json|\+xml)?|vnd\.syft\+json)$/, "sbom"],
  [/^text\/spdx(\+xml)?$/, "sbom"],
  [/^application\/vnd\.cyclonedx\+xml$/, "sbom"],
];

export function artifactKind(artifactType: string | null | undefined): ArtifactKind {
  if (!artifactType) return "other";
  const type = artifactType.toLowerCase().split(";")[0].trim();
  for (const [pattern, kind] of KINDS) if (pattern.test(type)) return kind;
  return "other";
}

export const KIND_LABELS: Record<ArtifactKind, string> = {
  signature: "Signatures",
  sbom: "SBOMs",
  attestation: "Attestations",
  other: "Other artifacts",
};

/** Referrer counts per artifact type, summed per kind, in a fixed order, empty kinds left out. */
export function summarizeReferrers(counts: Record<string, number>): { kind: ArtifactKind; count: number }[] {
  const totals: Record<ArtifactKind, number> = { signature: 0, sbom: 0, attestation: 0, other: 0 };
  for (const [type, count] of Object.entries(counts)) totals[artifactKind(type)] += count;
  return (Object.keys(totals) as ArtifactKind[]).filter((k) => totals[k] > 0).map((kind) => ({ kind, count: totals[kind] }));
}

export function platformName(p: { os: string | null; architecture: string | null; variant: string | null }): string {
  if (!p.os && !p.architecture) return "unknown platform";
  return [p.os ?? "?", p.architecture ?? "?", p.variant].filter(Boolean).join("/");
}
