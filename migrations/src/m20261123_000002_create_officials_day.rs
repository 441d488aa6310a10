//! The officials' day: daily stock, seals (a hash chain), draws, each entry's outcome,
//! winners with pickup codes, and pickups.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE daily_stock (
    draw_date    DATE         NOT NULL,
    pharmacy_id  VARCHAR(16)  NOT NULL,
    district_id  VARCHAR(16)  NOT NULL,
    product_id   VARCHAR(16)  NOT NULL,
    packs        BIGINT       NOT NULL CHECK (packs >= 0),
    PRIMARY KEY (draw_date, pharmacy_id, product_id)
);
CREATE TABLE seals (
    draw_date      DATE         PRIMARY KEY,
    seal_id        CHAR(64)     NOT NULL UNIQUE,
    previous       CHAR(64)     REFERENCES seals (seal_id),
    cutoff         TIMESTAMPTZ  NOT NULL,
    entrants       BIGINT       NOT NULL,
    entrants_root  CHAR(64)     NOT NULL,
    stock_sha256   CHAR(64)     NOT NULL,
    seal_txt       TEXT         NOT NULL,
    dir            TEXT         NOT NULL,
    sealed_at      TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- Only one seal may start the chain.
CREATE UNIQUE INDEX seals_one_genesis ON seals ((previous IS NULL)) WHERE previous IS NULL;
CREATE TABLE draws (
    draw_date     DATE         PRIMARY KEY REFERENCES seals (draw_date),
    seed          CHAR(64)     NOT NULL,
    winners       BIGINT       NOT NULL,
    draw_txt      TEXT         NOT NULL,
    publish_at    TIMESTAMPTZ  NOT NULL,
    drawn_at      TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- Every ticket sealed into a draw, with its leaf index; whether it won is in draw_winners.
-- Millions of rows a day, written in one statement by the seal from rows it has just read in
-- the same snapshot, so their keys hold by construction: no foreign keys and no B-tree (per-row
-- checks and index inserts made up most of a 2,000,000-ticket seal). Each seal appends its rows
-- in ticket order, so a BRIN index on ticket_id finds a ticket's rows by reading one block range
-- per sealed day.
CREATE TABLE draw_entries (
    ticket_id    CHAR(26)  COLLATE "C" NOT NULL,
    draw_date    DATE      NOT NULL,
    leaf_index   BIGINT    NOT NULL
);
CREATE INDEX draw_entries_ticket ON draw_entries USING brin (ticket_id) WITH (pages_per_range = 16);
CREATE TABLE draw_winners (
    draw_date    DATE         NOT NULL REFERENCES draws (draw_date),
    ticket_id    CHAR(26)     COLLATE "C" NOT NULL REFERENCES tickets (ticket_id),
    pharmacy_id  VARCHAR(16)  NOT NULL,
    product_id   VARCHAR(16)  NOT NULL,
    roll         SMALLINT     NOT NULL CHECK (roll IN (1, 2)),
    pickup_code  CHAR(10)     NOT NULL UNIQUE,
    masked_id    VARCHAR(18)  NOT NULL,
    PRIMARY KEY (draw_date, ticket_id)
);
CREATE INDEX draw_winners_pharmacy ON draw_winners (draw_date, pharmacy_id);
CREATE TABLE pickups (
    pickup_code   CHAR(10)     PRIMARY KEY REFERENCES draw_winners (pickup_code),
    pharmacy_id   VARCHAR(16)  NOT NULL,
    picked_up_at  TIMESTAMPTZ  NOT NULL DEFAULT now()
);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE pickups; DROP TABLE draw_winners; DROP TABLE draw_entries; \
                 DROP TABLE draws; DROP TABLE seals; DROP TABLE daily_stock;",
            )
            .await?;
        Ok(())
    }
}
