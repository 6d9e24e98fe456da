// A tooltip whose PatternFly machinery (a Popper and its listeners) mounts on the first hover or focus.
// Long lists show one per row and almost none are ever opened; mounting 25-100 of them up front was a
// visible share of a page's first render.
import { Tooltip } from "@patternfly/react-core";
import { cloneElement, ReactElement, ReactNode, useState } from "react";

type Trigger = ReactElement<{ onMouseEnter?: () => void; onFocus?: () => void }>;

export function LazyTooltip({ content, children }: { content: ReactNode; children: Trigger }) {
  const [armed, setArmed] = useState(false);
  if (armed) {
    // Mounted by the hover or focus it missed, so it starts visible; its own listeners take over.
    return <Tooltip content={content} isVisible>{children}</Tooltip>;
  }
  return cloneElement(children, { onMouseEnter: () => setArmed(true), onFocus: () => setArmed(true) });
}
