//! The claims' statement triggers, planned for the rows at hand every time.
//!
//! The functions of m20261205_000006 had two ways to go quadratic, both seen in the benches:
//!
//! - On UPDATE, a claim was given back when the old row was registered and `NOT EXISTS` a
//!   registered new row in `new_rows`: an anti-join of `old_rows` with `new_rows`. Transition
//!   tables have no index and no statistics, and PostgreSQL ran it as a nested loop: the
//!   draw's `UPDATE tickets SET status = 'won'` of 99,695 winners visited about 10^10 rows and
//!   ran for minutes (publication bench, 2,000,000 tickets). Whether the ticket is still
//!   registered is now asked of `tickets` itself, by its key.
//! - PL/pgSQL keeps a statement's plan for the session. The persister's first batch of a new
//!   day planned the check against an almost empty `active_persons` (a sequential scan is
//!   cheapest there) and kept that plan: every later batch scanned the whole table (fault
//!   bench: 29,247 scans reading 867 million rows in five minutes, the persister falling
//!   minutes behind). The statements now run with `EXECUTE`, planned each time for the batch's
//!   size and the table's; planning costs a fraction of a millisecond per batch.
//!
//! Each statement joins a transition table only with an indexed table, so it stays linear in
//! the rows the statement changed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE OR REPLACE FUNCTION tickets_check_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    -- EXECUTE does not set FOUND: no row leaves these NULL.
    bad_person text;
    bad_ticket text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- After the statement, `tickets` holds the new rows: a ticket that is not registered
        -- there any more gives its claim back (a row moved between partitions still is).
        EXECUTE $q$
            DELETE FROM active_persons a USING old_rows o
            WHERE o.status = 'registered' AND a.person_tag = o.person_tag
              AND a.ticket_id = o.ticket_id
              AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.ticket_id = o.ticket_id
                              AND t.person_tag = o.person_tag AND t.status = 'registered')
        $q$;
    END IF;
    EXECUTE $q$
        SELECT n.person_tag, n.ticket_id FROM new_rows n
        WHERE n.status = 'registered' AND NOT EXISTS (
            SELECT 1 FROM active_persons a
            WHERE a.person_tag = n.person_tag AND a.ticket_id = n.ticket_id)
        LIMIT 1
    $q$ INTO bad_person, bad_ticket;
    IF bad_ticket IS NOT NULL THEN
        RAISE unique_violation USING
            MESSAGE = format('person %s already holds a registered ticket (or %s was not claimed)',
                             bad_person, bad_ticket),
            CONSTRAINT = 'tickets_one_active_per_person',
            TABLE = 'tickets';
    END IF;
    RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION tickets_release_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE $q$
        DELETE FROM active_persons a USING old_rows o
        WHERE o.status = 'registered' AND a.person_tag = o.person_tag AND a.ticket_id = o.ticket_id
    $q$;
    RETURN NULL;
END
$fn$;
"#;

const DOWN: &str = r#"
CREATE OR REPLACE FUNCTION tickets_check_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
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
CREATE OR REPLACE FUNCTION tickets_release_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM active_persons a USING old_rows o
    WHERE o.status = 'registered' AND a.person_tag = o.person_tag AND a.ticket_id = o.ticket_id;
    RETURN NULL;
END
$fn$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
