// Repository names as the registry accepts them (OCI distribution grammar, lowercase).
const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

export function repositoryNameProblem(name: string): string | null {
  if (!name) return "Enter a name";
  if (name.length > 255) return "The name is longer than 255 characters";
  if (!NAME_RE.test(name)) return "Use lowercase letters, digits and single '.', '_' or '-' between them; '/' separates parts";
  return null;
}

const NAMESPACE_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** Organisation and user names, as the API checks them. */
export function namespaceNameProblem(name: string): string | null {
  if (!name) return "Enter a name";
  if (name.length < 2 || name.length > 255) return "Use 2 to 255 characters";
  if (!NAMESPACE_RE.test(name)) return "Use lowercase letters, digits and single '.', '_' or '-' between them";
  return null;
}
