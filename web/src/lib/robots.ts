// Robot accounts: names, and the credentials snippets shown with a token.
const SHORT_NAME = /^[a-z][a-z0-9_]{1,254}$/;

/** Robots and teams share the rule: a lowercase letter, then 1-254 lowercase letters, digits or '_'. */
export function shortNameProblem(name: string): string | null {
  if (!name) return "Enter a name";
  if (!SHORT_NAME.test(name)) return "Start with a lowercase letter, then 2 to 255 characters in all of lowercase letters, digits or '_'";
  return null;
}

export function robotShortName(fullName: string): string {
  const plus = fullName.indexOf("+");
  return plus < 0 ? fullName : fullName.slice(plus + 1);
}

/** `podman login` for the robot; the token is given on stdin in scripts, here on the line for copying. */
export function podmanLogin(host: string, robot: string, token: string): string {
  return `podman login -u='${robot}' -p='${token}' ${host}`;
}

/** ~/.docker/config.json (also read by podman and skopeo) holding the robot's credentials. */
export function dockerConfig(host: string, robot: string, token: string): string {
  const auth = btoa(`${robot}:${token}`);
  return JSON.stringify({ auths: { [host]: { auth, email: "" } } }, null, 2);
}
