-- The lookup epoch (docs/decisions.md "Pull lookups kept under a lease"): a gateway process may answer
-- which manifest a tag or digest names from memory, for as long as its last check of this number is
-- recent. Every transaction that changes what such a lookup answers (a tag made, moved, ended,
-- re-dated or deleted; a repository renamed, re-stated or deleted; a manifest deleted) adds one to it
-- when it commits, so the next check after that commit empties the caches.
--
-- The number moves in a deferred trigger, at commit, once per transaction (a transaction-local
-- setting remembers it was done): the row lock is the last lock such a transaction takes and is held
-- only while it commits, so it cannot be part of a deadlock, and a bulk change (gc ending 10,000 tags)
-- costs one update, not one per row.
--
-- `stamp` is new at every move: a database whose history diverged from what a gateway saw (a failover
-- that lost its last commits, a point-in-time restore) may bring `epoch` back to a number the gateway
-- holds, never the same (epoch, stamp).
CREATE TABLE lookup_epoch (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch     bigint NOT NULL,
    stamp     uuid NOT NULL
);
INSERT INTO lookup_epoch (only_row, epoch, stamp) VALUES (true, 0, gen_random_uuid());

-- Every gateway process that keeps lookups says here how long its lease is, every 30 s; a request that
-- changed a lookup waits the longest lease of the processes seen in the last 90 s (its own at least),
-- so gateways configured with different leases (a region's config.yaml, a rolling change) are covered.
-- A process that cannot renew its row for 60 s stops using what it kept.
CREATE TABLE lookup_leases (
    instance  uuid PRIMARY KEY,
    lease_s   double precision NOT NULL CHECK (lease_s >= 0),
    seen_at   timestamptz NOT NULL
);
CREATE INDEX lookup_leases_seen_at ON lookup_leases (seen_at);

CREATE FUNCTION advance_lookup_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('meridian.lookup_epoch_advanced', true) IS DISTINCT FROM 'yes' THEN
        UPDATE lookup_epoch SET epoch = epoch + 1, stamp = gen_random_uuid();
        PERFORM set_config('meridian.lookup_epoch_advanced', 'yes', true);
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER tags_advance_lookup_epoch AFTER INSERT OR UPDATE OR DELETE ON tags
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION advance_lookup_epoch();
CREATE CONSTRAINT TRIGGER repositories_advance_lookup_epoch AFTER UPDATE OF full_name, state OR DELETE ON repositories
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION advance_lookup_epoch();
CREATE CONSTRAINT TRIGGER manifests_advance_lookup_epoch AFTER DELETE ON manifests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION advance_lookup_epoch();
