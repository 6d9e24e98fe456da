import { describe, expect, it } from "vitest";

import { artifactKind, platformName, summarizeReferrers } from "./artifacts";

describe("artifacts", () => {
  it("knows signatures, SBOMs and attestations by artifact type", () => {
    expect(artifactKind("application/vnd.dev.cosign.artifact.sig.v1+json")).toBe("signature");
    expect(artifactKind("application/vnd.cncf.notary.signature")).toBe("signature");
    expect(artifactKind("application/spdx+json")).toBe("sbom");
    expect(artifactKind("application/vnd.cyclonedx+json")).toBe("sbom");
    expect(artifactKind("application/vnd.in-toto+json")).toBe("attestation");
    expect(artifactKind("application/vnd.dev.sigstore.bundle.v0.3+json")).toBe("attestation");
    expect(artifactKind("application/vnd.example.thing")).toBe("other");
    expect(artifactKind(null)).toBe("other");
  });
  it("sums referrer counts per kind in a fixed order", () => {
    expect(summarizeReferrers({
      "application/spdx+json": 1,
      "application/vnd.cncf.notary.signature": 2,
      "application/vnd.dev.cosign.artifact.sig.v1+json": 1,
    })).toEqual([{ kind: "signature", count: 3 }, { kind: "sbom", count: 1 }]);
    expect(summarizeReferrers({})).toEqual([]);
  });
  it("names platforms", () => {
    expect(platformName({ os: "linux", architecture: "arm64", variant: "v8" })).toBe("linux/arm64/v8");
    expect(platformName({ os: null, architecture: null, variant: null })).toBe("unknown platform");
  });
});
