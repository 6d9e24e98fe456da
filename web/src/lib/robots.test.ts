import { describe, expect, it } from "vitest";

import { dockerConfig, podmanLogin, robotShortName, shortNameProblem } from "./robots";

describe("robots", () => {
  it("checks short names as the API does", () => {
    expect(shortNameProblem("builder_1")).toBeNull();
    for (const bad of ["", "b", "1bot", "Bot", "my-bot", "a+b"]) expect(shortNameProblem(bad), bad).not.toBeNull();
  });
  it("splits the namespace from a robot's name", () => {
    expect(robotShortName("acme+ci")).toBe("ci");
    expect(robotShortName("ci")).toBe("ci");
  });
  it("writes login snippets", () => {
    expect(podmanLogin("registry.example.com", "acme+ci", "T0KEN")).toBe("podman login -u='acme+ci' -p='T0KEN' registry.example.com");
    const config = JSON.parse(dockerConfig("registry.example.com", "acme+ci", "T0KEN"));
    expect(atob(config.auths["registry.example.com"].auth)).toBe("acme+ci:T0KEN");
  });
});
