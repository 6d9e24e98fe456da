-- The lookup epoch (docs/decisions.md "Pull lookups cached for a lease"): a gateway process may answer
-- which manifest a tag or digest names from memory, for as long as its last check of this number is
-- recent. Every transaction that changes what such a lookup answers (a tag made, moved, ended,
-- re-dated or deleted; a repository renamed, re-stated or deleted; a manifest deleted) adds one to it
-- when it commits, so the next check after that commit empties the caches.
--
-- The number moves in a deferred trigger, at commit, once per transaction (a transaction-local
-- setting remembers it was done): the row lock is the last lock such a transaction takes and is held
-- only while it commits, so it cannot be part of a deadlock, and a bulk change (gc ending 10,000 tags)
-- costs one update, not one per row.
CREATE TABLE lookup_epoch (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch     bigint NOT NULL
);
INSERT INTO lookup_epoch (only_row, epoch) VALUES (true, 0);

CREATE FUNCTION advance_lookup_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('meridian.lookup_epoch_advanced', true) IS DISTINCT FROM 'yes' THEN
        UPDATE lookup_epoch SET epoch = epoch + 1;
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
