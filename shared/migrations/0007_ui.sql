-- What the web UI's organisation, search and superuser pages read (docs/ui.md).

-- Registry-wide usage logs for superusers: a time range over every row, newest first.
CREATE INDEX audit_logs_datetime ON audit_logs (datetime);

-- Search by digest prefix across repositories (`digest LIKE 'sha256:ab12%'`).
CREATE INDEX manifests_digest_prefix ON manifests (digest text_pattern_ops);
