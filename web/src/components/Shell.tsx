import {
  Banner,
  Button,
  Divider,
  Dropdown,
  DropdownGroup,
  DropdownItem,
  DropdownList,
  Masthead,
  MastheadBrand,
  MastheadContent,
  MastheadLogo,
  MastheadMain,
  MastheadToggle,
  MenuToggle,
  Nav,
  NavItem,
  NavList,
  Page,
  PageSidebar,
  PageSidebarBody,
  PageToggleButton,
  SkipToContent,
  Toolbar,
  ToolbarContent,
  ToolbarGroup,
  ToolbarItem,
} from "@patternfly/react-core";
import BarsIcon from "@patternfly/react-icons/dist/esm/icons/bars-icon";
import CheckIcon from "@patternfly/react-icons/dist/esm/icons/check-icon";
import { ReactNode, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";

import { Appearance, rememberAppearance, storedAppearance } from "../lib/theme";
import { HeaderSearch } from "./HeaderSearch";
import { useSession } from "../session";
import { safeUrl } from "../lib/urls";

const APPEARANCES: { value: Appearance; label: string }[] = [
  { value: "light", label: "Light" },
  { value: "dark", label: "Dark" },
  { value: "device", label: "Device-based" },
];

function UserMenu() {
  const { user, signOut } = useSession();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const [appearance, setAppearance] = useState<Appearance>(storedAppearance());
  return (
    <Dropdown
      isOpen={open}
      onOpenChange={setOpen}
      popperProps={{ position: "right" }}
      toggle={(ref) => (
        <MenuToggle ref={ref} onClick={() => setOpen(!open)} isExpanded={open} variant="plainText" aria-label="User menu" id="user-menu">
          {user ? user.username : "Not signed in"}
        </MenuToggle>
      )}
    >
      <DropdownGroup label="Appearance">
        <DropdownList>
          {APPEARANCES.map((a) => (
            <DropdownItem
              key={a.value}
              id={`appearance-${a.value}`}
              onClick={() => {
                rememberAppearance(a.value);
                setAppearance(a.value);
                setOpen(false);
              }}
              icon={appearance === a.value ? <CheckIcon /> : <span style={{ display: "inline-block", width: "1em" }} />}
              aria-checked={appearance === a.value}
              role="menuitemradio"
            >
              {a.label}
            </DropdownItem>
          ))}
        </DropdownList>
      </DropdownGroup>
      <Divider component="li" />
      <DropdownList>
        {user ? (
          <DropdownItem key="signout" id="sign-out" onClick={() => void signOut()}>
            Sign out
          </DropdownItem>
        ) : (
          <DropdownItem key="signin" id="sign-in" onClick={() => navigate("/signin")}>
            Sign in
          </DropdownItem>
        )}
      </DropdownList>
    </Dropdown>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  const { config, readOnly, user } = useSession();
  const location = useLocation();
  const raw = config.config.BRANDING ?? {};
  const branding = { logo: safeUrl(raw.logo), footer_img: safeUrl(raw.footer_img), footer_url: safeUrl(raw.footer_url) };
  const title = config.config.REGISTRY_TITLE || "Meridian";
  const shortTitle = config.config.REGISTRY_TITLE_SHORT || title;
  const section = location.pathname.split("/")[1] || "repository";
  const masthead = (
    <Masthead>
      <MastheadMain>
        <MastheadToggle>
          <PageToggleButton isHamburgerButton aria-label="Global navigation">
            <BarsIcon />
          </PageToggleButton>
        </MastheadToggle>
        <MastheadBrand>
          <MastheadLogo component={(props: object) => <Link {...props} to="/repository" aria-label={`${title} home`} />}>
            {branding.logo ? <img className="meridian-logo" src={branding.logo} alt={title} /> : null}
            <span className="meridian-brand-title" data-testid="registry-title">{shortTitle}</span>
          </MastheadLogo>
        </MastheadBrand>
      </MastheadMain>
      <MastheadContent>
        <Toolbar isFullHeight isStatic>
          <ToolbarContent>
            {user || config.features.ANONYMOUS_ACCESS ? (
              <ToolbarItem>
                <HeaderSearch />
              </ToolbarItem>
            ) : null}
            <ToolbarGroup align={{ default: "alignEnd" }}>
              {!user && location.pathname !== "/signin" ? (
                <ToolbarItem>
                  <Button variant="secondary" component={(props: object) => <Link {...props} to="/signin" />}>
                    Sign in
                  </Button>
                </ToolbarItem>
              ) : null}
              <ToolbarItem>
                <UserMenu />
              </ToolbarItem>
            </ToolbarGroup>
          </ToolbarContent>
        </Toolbar>
      </MastheadContent>
    </Masthead>
  );
  const sidebar = (
    <PageSidebar>
      <PageSidebarBody>
        <Nav aria-label="Sections">
          <NavList>
            <NavItem isActive={section === "repository" || section === "tag"}>
              <Link to="/repository">Repositories</Link>
            </NavItem>
            {user ? (
              <NavItem isActive={section === "organization"}>
                <Link to="/organization">Organisations</Link>
              </NavItem>
            ) : null}
            {user ? (
              <NavItem isActive={section === "usage-logs"}>
                <Link to="/usage-logs">Usage logs</Link>
              </NavItem>
            ) : null}
            {user?.super_user ? (
              <NavItem isActive={section === "superuser"}>
                <Link to="/superuser">Superuser</Link>
              </NavItem>
            ) : null}
          </NavList>
        </Nav>
      </PageSidebarBody>
    </PageSidebar>
  );
  const banner = readOnly ? (
    <Banner status="warning" screenReaderText="Warning banner" data-testid="read-only-banner">
      {config.read_only_message ?? "This registry is read-only: pushes and changes are refused."}
    </Banner>
  ) : undefined;
  return (
    <>
      {banner}
      <Page
        masthead={masthead}
        sidebar={sidebar}
        isManagedSidebar
        skipToContent={<SkipToContent href="#main-content">Skip to content</SkipToContent>}
        mainContainerId="main-content"
      >
        {children}
        {branding.footer_img || branding.footer_url ? (
          <footer className="meridian-footer" data-testid="footer">
            {branding.footer_url ? (
              <a href={branding.footer_url} rel="noopener noreferrer">
                {branding.footer_img ? <img src={branding.footer_img} alt={`${title} footer`} /> : branding.footer_url}
              </a>
            ) : (
              <img src={branding.footer_img} alt={`${title} footer`} />
            )}
          </footer>
        ) : null}
      </Page>
    </>
  );
}
