// Actions the user may not take are shown disabled with the reason (a tooltip, and the button's
// accessible description), rather than hidden: the page says what exists and who may do it.
import { Button, ButtonProps, Tooltip } from "@patternfly/react-core";

export function GuardedButton({ reason, id, children, ...props }: ButtonProps & { reason: string | null; id: string }) {
  if (!reason) {
    return (
      <Button id={id} {...props}>
        {children}
      </Button>
    );
  }
  const describedBy = `${id}-reason`;
  return (
    <>
      <Tooltip content={reason} aria="none">
        <Button id={id} {...props} isAriaDisabled aria-describedby={describedBy} onClick={undefined}>
          {children}
        </Button>
      </Tooltip>
      <span id={describedBy} className="pf-v6-screen-reader" data-testid={describedBy}>
        {reason}
      </span>
    </>
  );
}
