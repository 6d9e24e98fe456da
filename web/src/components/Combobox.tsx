// A text box with suggestions (the ARIA 1.2 combobox pattern): arrows move through the options,
// Enter picks the highlighted one (or submits the text), Escape closes the list.
import { TextInput } from "@patternfly/react-core";
import { ReactNode, useEffect, useId, useState } from "react";

export interface ComboOption {
  key: string;
  group: string;
  label: ReactNode;
  text: string;
}

export function Combobox({
  id,
  label,
  placeholder,
  value,
  onChange,
  options,
  onSelect,
  onSubmit,
  status,
}: {
  id: string;
  label: string;
  placeholder?: string;
  value: string;
  onChange: (text: string) => void;
  options: ComboOption[];
  onSelect: (option: ComboOption) => void;
  onSubmit?: (text: string) => void;
  status?: string | null;
}) {
  const listId = useId();
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  useEffect(() => setActive(-1), [options]);
  const shown = open && value.length > 0 && (options.length > 0 || !!status);
  const groups = [...new Set(options.map((o) => o.group))];
  const optionId = (index: number) => `${listId}-option-${index}`;
  const pick = (option: ComboOption) => {
    setOpen(false);
    onSelect(option);
  };
  return (
    <div className="meridian-combobox">
      <TextInput
        id={id}
        type="search"
        role="combobox"
        aria-label={label}
        aria-autocomplete="list"
        aria-expanded={shown}
        aria-controls={listId}
        aria-activedescendant={shown && active >= 0 ? optionId(active) : undefined}
        placeholder={placeholder}
        value={value}
        autoComplete="off"
        onChange={(_e, text) => {
          onChange(text);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown" && options.length) {
            e.preventDefault();
            setOpen(true);
            setActive((a) => (a + 1) % options.length);
          } else if (e.key === "ArrowUp" && options.length) {
            e.preventDefault();
            setActive((a) => (a <= 0 ? options.length - 1 : a - 1));
          } else if (e.key === "Enter") {
            e.preventDefault();
            if (shown && active >= 0) pick(options[active]);
            else if (onSubmit && value.trim()) {
              setOpen(false);
              onSubmit(value.trim());
            }
          } else if (e.key === "Escape") {
            setOpen(false);
          }
        }}
      />
      <div className="meridian-combobox-list" hidden={!shown}>
        {status && options.length === 0 ? <div role="status" className="meridian-combobox-status">{status}</div> : null}
        <ul id={listId} role="listbox" aria-label={`${label} suggestions`} hidden={options.length === 0}>
          {groups.map((group) => (
            <li key={group} role="presentation">
              <div className="meridian-combobox-group" aria-hidden="true">{group}</div>
              <ul role="group" aria-label={group}>
                {options.map((o, index) => o.group !== group ? null : (
                  <li
                    key={o.key}
                    id={optionId(index)}
                    role="option"
                    aria-selected={index === active}
                    className={index === active ? "meridian-combobox-option meridian-combobox-active" : "meridian-combobox-option"}
                    onMouseDown={(e) => e.preventDefault()}
                    onClick={() => pick(o)}
                  >
                    {o.label}
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
      </div>
    </div>
  );
}
