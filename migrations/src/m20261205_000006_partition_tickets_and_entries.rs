//! `tickets` partitioned by month of acceptance, `draw_entries` by month of draw date, so that data
//! past retention goes with a `DROP TABLE` of its partition instead of a `DELETE` that rewrites
//! the heap and bloats the indexes (see `maskdraw retention`, ARCHITECTURE.md "Partitions and
//! retention").
//!
//! The populated tables are converted in place: each is renamed aside, the partitioned table is
//! created under the old name with one partition per month that holds rows and those just
//! ahead, the rows are copied, the old table dropped, and the indexes made again on the parent.
//!
//! What changes with partitioning:
//! - A unique index of a partitioned table must contain the partition key. The primary key of
//!   `tickets` becomes `(ticket_id, accepted_at)`: a ticket's id and acceptance time never change
//!   and a redelivered reservation carries both, so a redelivery still lands on the same key.
//! - The partial unique index "one registered ticket per person" cannot include the key (it
//!   would then be one per person per month). `active_persons` (person_tag primary key) holds
//!   each registered ticket's claim: the persister claims before it stores the ticket, and
//!   statement triggers on `tickets` refuse a registered row without its claim (SQLSTATE 23505,
//!   named `tickets_one_active_per_person` like the index it replaces) and give the claim back
//!   when the ticket leaves `registered` or is deleted. The guarantee stays in PostgreSQL.
//! - `draw_winners.ticket_id` can no longer reference `tickets (ticket_id)` (not unique alone).
//!   The draw writes winners from tickets it read in the same transaction, as it already does
//!   for `draw_entries`, which never had a foreign key.
//! - `draw_entries` goes by month of draw date rather than by day (ARCHITECTURE.md says why:
//!   planning cost per partition on the status lookup; the table holds no personal data).
//! - Each table gets a DEFAULT partition so that a row never fails for want of a partition;
//!   `tickets_ensure_month` / `draw_entries_ensure_month` make a partition (moving any rows the
//!   default holds for its range) and are called ahead of time by the application.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
-- Partition makers: one advisory lock so that servers and persisters starting together do not
-- race to create the same table.
CREATE FUNCTION tickets_ensure_month(m date) RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    first date := date_trunc('month', m)::date;
    lo timestamptz := first::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (first + interval '1 month')::date::timestamp AT TIME ZONE 'UTC';
    part text := 'tickets_p' || to_char(first, 'YYYYMM');
BEGIN
    PERFORM pg_advisory_xact_lock(1835270144, 16);
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Rows the default partition took for this month move into the new one; the claims of
    -- registered ones stay as they are (the claim triggers are the parent's, statement-level:
    -- they do not see a DELETE on a partition).
    EXECUTE format('CREATE TABLE %I (LIKE tickets INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM tickets_default WHERE accepted_at >= %L AND accepted_at < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    EXECUTE format('ALTER TABLE tickets ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    RETURN true;
END
$fn$;

CREATE FUNCTION draw_entries_ensure_month(m date) RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    first date := date_trunc('month', m)::date;
    next date := (date_trunc('month', m) + interval '1 month')::date;
    part text := 'draw_entries_p' || to_char(first, 'YYYYMM');
BEGIN
    PERFORM pg_advisory_xact_lock(1835270144, 17);
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE draw_entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM draw_entries_default WHERE draw_date >= %L AND draw_date < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', first, next, part);
    EXECUTE format('ALTER TABLE draw_entries ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, first, next);
    RETURN true;
END
$fn$;

-- tickets --------------------------------------------------------------------------------
ALTER TABLE draw_winners DROP CONSTRAINT draw_winners_ticket_id_fkey;
ALTER TABLE tickets RENAME TO tickets_unpartitioned;
ALTER INDEX tickets_pkey RENAME TO tickets_unpartitioned_pkey;
ALTER INDEX tickets_one_active_per_person RENAME TO tickets_unpartitioned_one_active;
ALTER INDEX tickets_person RENAME TO tickets_unpartitioned_person;
ALTER INDEX tickets_registered_until RENAME TO tickets_unpartitioned_registered_until;
ALTER TABLE tickets_unpartitioned RENAME CONSTRAINT tickets_status_check TO tickets_unpartitioned_status_check;

CREATE TABLE tickets (
    ticket_id    CHAR(26)     COLLATE "C" NOT NULL,
    person_tag   CHAR(32)     NOT NULL,
    phone_tag    CHAR(32)     NOT NULL,
    masked_id    VARCHAR(18)  NOT NULL,
    pharmacy_id  VARCHAR(16)  NOT NULL,
    product_id   VARCHAR(16)  NOT NULL,
    flexible     BOOLEAN      NOT NULL,
    status       VARCHAR(12)  NOT NULL
                 CONSTRAINT tickets_status_check
                 CHECK (status IN ('registered', 'won', 'expired', 'rejected')),
    accepted_at  TIMESTAMPTZ  NOT NULL,
    valid_until  TIMESTAMPTZ  NOT NULL,
    persisted_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT tickets_pkey PRIMARY KEY (ticket_id, accepted_at)
) PARTITION BY RANGE (accepted_at);
CREATE TABLE tickets_default PARTITION OF tickets DEFAULT;

SELECT tickets_ensure_month(m::date)
FROM generate_series(
    date_trunc('month', LEAST(now(), COALESCE((SELECT min(accepted_at) FROM tickets_unpartitioned), now())) AT TIME ZONE 'UTC'),
    date_trunc('month', GREATEST(now(), COALESCE((SELECT max(accepted_at) FROM tickets_unpartitioned), now())) AT TIME ZONE 'UTC')
        + interval '2 months',
    interval '1 month') AS m;

INSERT INTO tickets (ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, flexible,
                     status, accepted_at, valid_until, persisted_at)
SELECT ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, flexible,
       status, accepted_at, valid_until, persisted_at
FROM tickets_unpartitioned;

CREATE INDEX tickets_person ON tickets (person_tag);
CREATE INDEX tickets_registered_until ON tickets (valid_until) WHERE status = 'registered';

-- One registered ticket per person: the claims.
CREATE TABLE active_persons (
    person_tag  CHAR(32)  PRIMARY KEY,
    ticket_id   CHAR(26)  COLLATE "C" NOT NULL
);
INSERT INTO active_persons (person_tag, ticket_id)
SELECT person_tag, ticket_id FROM tickets_unpartitioned WHERE status = 'registered';

DROP TABLE tickets_unpartitioned;

-- The claims are checked and given back once per statement, over its transition tables: one
-- anti-join per persister batch rather than a function call per row. Rows moved between
-- partitions by an UPDATE of accepted_at appear in that UPDATE's tables, old and new, and keep
-- their claim. (Statement triggers belong to the parent: writes go through `tickets`, as every
-- writer's do; the partition maker's own moves out of the DEFAULT partition are not seen.)
CREATE FUNCTION tickets_check_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    bad record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM active_persons a USING old_rows o
        WHERE o.status = 'registered' AND a.person_tag = o.person_tag AND a.ticket_id = o.ticket_id
          AND NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.ticket_id = o.ticket_id
                          AND n.person_tag = o.person_tag AND n.status = 'registered');
    END IF;
    SELECT n.person_tag, n.ticket_id INTO bad FROM new_rows n
    WHERE n.status = 'registered' AND NOT EXISTS (
        SELECT 1 FROM active_persons a WHERE a.person_tag = n.person_tag AND a.ticket_id = n.ticket_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE unique_violation USING
            MESSAGE = format('person %s already holds a registered ticket (or %s was not claimed)',
                             bad.person_tag, bad.ticket_id),
            CONSTRAINT = 'tickets_one_active_per_person',
            TABLE = 'tickets';
    END IF;
    RETURN NULL;
END
$fn$;
CREATE FUNCTION tickets_release_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM active_persons a USING old_rows o
    WHERE o.status = 'registered' AND a.person_tag = o.person_tag AND a.ticket_id = o.ticket_id;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER tickets_one_active_per_person_insert AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_check_claims();
CREATE TRIGGER tickets_one_active_per_person_update AFTER UPDATE ON tickets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_check_claims();
CREATE TRIGGER tickets_one_active_per_person_delete AFTER DELETE ON tickets
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_release_claims();

-- draw_entries ---------------------------------------------------------------------------
ALTER TABLE draw_entries RENAME TO draw_entries_unpartitioned;
ALTER INDEX draw_entries_ticket_id RENAME TO draw_entries_unpartitioned_ticket_id;
CREATE TABLE draw_entries (
    ticket_id    CHAR(26)  COLLATE "C" NOT NULL,
    draw_date    DATE      NOT NULL,
    leaf_index   BIGINT    NOT NULL
) PARTITION BY RANGE (draw_date);
CREATE TABLE draw_entries_default PARTITION OF draw_entries DEFAULT;
SELECT draw_entries_ensure_month(m) FROM (SELECT DISTINCT date_trunc('month', draw_date)::date AS m FROM draw_entries_unpartitioned) AS months;
SELECT draw_entries_ensure_month((date_trunc('month', now() AT TIME ZONE 'UTC') + i * interval '1 month')::date) FROM generate_series(0, 2) AS i;
INSERT INTO draw_entries (ticket_id, draw_date, leaf_index)
SELECT ticket_id, draw_date, leaf_index FROM draw_entries_unpartitioned ORDER BY draw_date, ticket_id;
DROP TABLE draw_entries_unpartitioned;
CREATE INDEX draw_entries_ticket_id ON draw_entries (ticket_id);
ANALYZE tickets, draw_entries, active_persons;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Back to plain tables, rows kept (the claims are the partial unique index again).
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE tickets_plain (LIKE tickets INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO tickets_plain SELECT * FROM tickets;
DROP TABLE tickets;
DROP TABLE active_persons;
DROP FUNCTION tickets_check_claims();
DROP FUNCTION tickets_release_claims();
DROP FUNCTION tickets_ensure_month(date);
ALTER TABLE tickets_plain RENAME TO tickets;
ALTER TABLE tickets ADD PRIMARY KEY (ticket_id);
CREATE UNIQUE INDEX tickets_one_active_per_person ON tickets (person_tag) WHERE status = 'registered';
CREATE INDEX tickets_person ON tickets (person_tag);
CREATE INDEX tickets_registered_until ON tickets (valid_until) WHERE status = 'registered';
ALTER TABLE draw_winners ADD CONSTRAINT draw_winners_ticket_id_fkey
    FOREIGN KEY (ticket_id) REFERENCES tickets (ticket_id);
CREATE TABLE draw_entries_plain (LIKE draw_entries);
INSERT INTO draw_entries_plain SELECT * FROM draw_entries;
DROP TABLE draw_entries;
DROP FUNCTION draw_entries_ensure_month(date);
ALTER TABLE draw_entries_plain RENAME TO draw_entries;
CREATE INDEX draw_entries_ticket_id ON draw_entries (ticket_id);
"#,
            )
            .await?;
        Ok(())
    }
}
