//! W3: CPU-bound work.

use lambda_parallel::Pool;
use rayon::prelude::*;

use crate::support::report::{Figure, Row};
use crate::{check, time, Config, Result};

const W3_PASSWORDS: usize = 200;
const W3_ROUNDS: u32 = 10_000;

#[expect(
    clippy::needless_pass_by_value,
    reason = "a pool task owns its arguments"
)]
fn hash_password(password: String) -> [u8; 32] {
    let mut key = [0_u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        b"lambda-parallel",
        W3_ROUNDS,
        &mut key,
    );
    key
}

pub(crate) fn w3_pbkdf2(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let passwords: Vec<String> = (0..W3_PASSWORDS)
        .map(|i| format!("correct horse {i}"))
        .collect();
    let (mut ours, mut parallel, mut serial) =
        (Figure::default(), Figure::default(), Figure::default());
    for _ in 0..config.reps(15) {
        let inputs = passwords.clone();
        let (serial_secs, expected) =
            time(|| inputs.into_iter().map(hash_password).collect::<Vec<_>>());
        serial.push(serial_secs);
        let inputs = passwords.clone();
        let (secs, results) = time(|| pool.map(hash_password, inputs));
        check(results? == expected, "W3 pool")?;
        ours.push(serial_secs / secs);
        let inputs = passwords.clone();
        let (secs, results) = time(|| {
            threads.install(|| {
                inputs
                    .into_par_iter()
                    .map(hash_password)
                    .collect::<Vec<_>>()
            })
        });
        check(results == expected, "W3 threads")?;
        parallel.push(serial_secs / secs);
    }
    let met = ours.median() >= 1.95 && ours.median() >= 0.98 * parallel.median();
    let held = ours.median() >= 1.90 && ours.median() >= 0.95 * parallel.median();
    Ok(vec![Row {
        id: "W3",
        measured: format!(
            "200 × PBKDF2 10k via map: speedup (serial {:.2} s)",
            serial.median()
        ),
        ours,
        baseline: Some(("threads", parallel)),
        target: "≥ 1.95×, ≥ 0.98× threads",
        met: Some(met),
        kept: "≥ 1.90×, ≥ 0.95× threads",
        held: Some(held),
    }])
}
