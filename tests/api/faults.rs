//! The fault campaign's scenarios, short (issue 10, item 1): a few seconds of reservations from
//! new people at a low rate through real `maskdraw serve` and `maskdraw persist` processes, one
//! fault in the middle, the people without a final answer asked again; then every 202 must be a
//! row in PostgreSQL (checked ticket by ticket) and no person may hold two registered tickets.
//! The full campaign, with its timings, is `cargo bench --bench faults` (BENCHMARKS.md).

use std::time::Duration;

use crate::common::faults::{run_scenario, Fault, Outcome};

const RATE: u64 = 100;
const SECONDS: u64 = 8;

async fn short(fault: Fault) -> Outcome {
    let out = run_scenario(fault, RATE, SECONDS).await;
    println!("{}\n{}", Outcome::header(), out.row());
    assert!(out.accepted > 0, "nothing was accepted: {out:?}");
    assert_eq!(out.lost, 0, "202s missing from PostgreSQL: {out:?}");
    assert_eq!(
        out.duplicates, 0,
        "people with two registered tickets: {out:?}"
    );
    out
}

#[tokio::test]
async fn a_broker_cut_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    short(Fault::BrokerCut(Duration::from_secs(2))).await;
}

#[tokio::test]
async fn a_redis_cut_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    let out = short(Fault::RedisCut(Duration::from_secs(1))).await;
    // Without Redis no lock can be taken: the cut shows as answers other than 202.
    assert!(out.unavailable + out.other > 0, "{out:?}");
}

#[tokio::test]
async fn a_postgresql_cut_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    short(Fault::PostgresCut(Duration::from_secs(3))).await;
}

#[tokio::test]
async fn a_persister_killed_three_times_under_load_loses_no_202_and_stores_each_once() {
    short(Fault::PersisterKills {
        times: 3,
        gap: Duration::from_millis(800),
    })
    .await;
}

#[tokio::test]
async fn one_of_two_servers_killed_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    short(Fault::ServeKill).await;
}

#[tokio::test]
async fn a_redis_with_aof_killed_and_restarted_under_load_loses_no_202() {
    short(Fault::RedisRestart).await;
}

#[tokio::test]
async fn a_rabbitmq_node_killed_and_restarted_under_load_loses_no_202() {
    short(Fault::BrokerRestart).await;
}
