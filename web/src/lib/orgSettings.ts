// An organisation's Settings tab (Quay's layout): sub-tabs General, Notifications and Quota, the one
// shown named by the `section` parameter of /organization/<org>?tab=settings.

export const SETTINGS_SECTIONS = ["general", "notifications", "quota"] as const;
export type SettingsSection = (typeof SETTINGS_SECTIONS)[number];

/** The sections offered: Quota only with FEATURE_QUOTA_MANAGEMENT (its API answers 404 otherwise). */
export function offeredSections(quotaManagement: boolean): SettingsSection[] {
  return SETTINGS_SECTIONS.filter((s) => s !== "quota" || quotaManagement);
}

/** The section a `section` parameter names; General when it is missing, unknown or not offered. */
export function settingsSection(param: string | null, offered: readonly SettingsSection[]): SettingsSection {
  return offered.find((s) => s === param) ?? "general";
}

/** The route of an organisation's settings, on one section (General: no parameter). */
export function organizationSettingsRoute(name: string, section?: string | null): string {
  const known = SETTINGS_SECTIONS.find((s) => s === section && s !== "general");
  return `/organization/${encodeURIComponent(name)}?tab=settings${known ? `&section=${known}` : ""}`;
}

/** Why the user may not open the organisation's settings (null: they may): the rights the API
 * checks (administrators change an organisation) and the registry's read-only mode. */
export function settingsClosedReason(org: string, isAdmin: boolean, readOnly: boolean): string | null {
  if (!isAdmin) return `Only administrators of ${org} can change its settings`;
  if (readOnly) return "The registry is read-only";
  return null;
}
