//! The same password-hashing batch on this environment's pool, then across a fleet of
//! invocations, and what the fleet would cost on Lambda. Here the fleet's invocations are
//! served in process (`Loopback`); on Lambda, `lambda_parallel_aws::LambdaInvoker::from_env()`
//! takes its place and each invocation runs in an execution environment of its own.
//!
//! ```text
//! cargo run --release --features fleet --example fleet [PASSWORDS] [ROUNDS] [MEMORY_MB]
//! ```

use std::time::Instant;

use lambda_parallel::fleet::{Fleet, FleetWorker, Loopback, Outcome};
use lambda_parallel::{lambda_parallel, Pool};

/// PBKDF2-HMAC-SHA256 of `password`, salted with its index: the key's first 8 bytes, in hex.
#[lambda_parallel]
fn hash_password(password: String, index: u64, rounds: u32) -> String {
    let mut key = [0_u8; 32];
    let salt = format!("lambda-parallel/{index}");
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), rounds, &mut key);
    key[..8]
        .iter()
        .fold(String::new(), |hex, byte| hex + &format!("{byte:02x}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    lambda_parallel::init()?;
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map_or(Ok(400), |arg| arg.parse())?;
    let rounds: u32 = args.next().map_or(Ok(10_000), |arg| arg.parse())?;
    let memory_gb = args.next().map_or(Ok(2048.0), |arg| arg.parse::<f64>())? / 1024.0;
    let inputs = || (0..count).map(|i| (format!("correct horse {i}"), i, rounds));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let pool = Pool::builder().build()?;
    let started = Instant::now();
    let local = pool.starmap_each(hash_password, inputs());
    let local_time = started.elapsed();
    println!(
        "{count} hashes on this environment's pool ({} workers): {local_time:.2?}",
        pool.workers()
    );

    // The function's side (around its handler), and the caller's: batches of 25 passwords, 4
    // invocations at a time.
    let worker = FleetWorker::new(Pool::builder().build()?).task(hash_password);
    let per_invocation: u64 = 25;
    let fleet = Fleet::builder(Loopback::new(worker))
        .function("password-hasher")
        .items_per_invocation(usize::try_from(per_invocation)?)
        .max_in_flight(4)
        .build()?;
    let started = Instant::now();
    let outcomes = runtime.block_on(fleet.starmap_outcomes(hash_password, inputs()));
    let fleet_time = started.elapsed();
    let retried = outcomes
        .iter()
        .filter(|outcome| outcome.attempts() > 1)
        .count();
    let remote: Vec<String> = outcomes
        .into_iter()
        .map(Outcome::into_result)
        .collect::<Result<_, _>>()?;
    let local: Vec<String> = local.into_iter().collect::<Result<_, _>>()?;
    assert_eq!(remote, local, "the fleet computed the same hashes");
    let invocations = u32::try_from(count.div_ceil(per_invocation))?;
    println!("the same across a fleet: {fleet_time:.2?}, {invocations} invocations, {retried} items retried");

    // On Lambda, each invocation bills its own duration at the function's memory, plus the
    // request: GB-seconds ≈ the work's CPU-seconds / vCPUs per environment × memory.
    let gb_seconds = local_time.as_secs_f64() * memory_gb;
    let dollars = gb_seconds * 0.000_016_666_7 + f64::from(invocations) * 0.000_000_2;
    println!(
        "on Lambda at {memory_gb:.2} GB: about {gb_seconds:.1} GB-s and {invocations} requests \
         (${dollars:.5}), the same work as one environment's {local_time:.2?}, spread over up to \
         4 environments at once"
    );
    Ok(())
}
