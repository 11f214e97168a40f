//! Fan out one worker per region, give each a deadline, and report every region's outcome:
//! a region whose worker panics or hangs costs only that region.
//!
//! ```text
//! cargo run --example regions
//! ```

use std::time::{Duration, Instant};

use lambda_parallel::lambda_parallel;
use serde::{Deserialize, Serialize};

/// One region's sales summary.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    orders: u32,
    revenue_cents: u64,
    largest_cents: u64,
}

/// Sums a region's (synthetic, deterministic) orders. Two regions misbehave on purpose: one
/// holds a corrupt record, one never finishes.
#[lambda_parallel]
fn summarize(region: String, orders: u32) -> Report {
    let mut state = region.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut report = Report {
        orders,
        revenue_cents: 0,
        largest_cents: 0,
    };
    for _ in 0..orders {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let cents = state % 50_000;
        report.revenue_cents += cents;
        report.largest_cents = report.largest_cents.max(cents);
    }
    match region.as_str() {
        "ap-south-2" => panic!("corrupt record in {region}"),
        "sa-east-1" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        _ => report,
    }
}

fn main() -> Result<(), lambda_parallel::Error> {
    let regions = [
        "us-east-1",
        "eu-west-1",
        "ap-south-2",
        "sa-east-1",
        "eu-central-1",
    ];
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    let handles = regions
        .iter()
        .map(|region| summarize::spawn((*region).to_owned(), 2_000_000))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "{} regions, one worker process each, {deadline:?} deadline",
        regions.len()
    );
    for (region, handle) in regions.iter().zip(handles) {
        let pid = handle.pid();
        match handle.join_timeout(deadline.saturating_sub(started.elapsed())) {
            Ok(r) => println!(
                "{region:>14} (pid {pid}): {} orders, revenue {}.{:02}, largest {}.{:02}",
                r.orders,
                r.revenue_cents / 100,
                r.revenue_cents % 100,
                r.largest_cents / 100,
                r.largest_cents % 100
            ),
            Err(err) => println!("{region:>14} (pid {pid}): failed: {err}"),
        }
    }
    println!("done in {:.2?}", started.elapsed());
    Ok(())
}
