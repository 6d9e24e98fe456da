-- Operations: the request id that caused an event travels with it (NATS header Meridian-Request-Id).
ALTER TABLE outbox ADD COLUMN request_id text;
