//! The main example: hash a batch of passwords with PBKDF2-HMAC-SHA256, one worker process per
//! CPU, and check the result against a plain serial loop.
//!
//! ```text
//! cargo run --release --example password_hashing [PASSWORDS] [ROUNDS]
//! ```

use std::time::Instant;

use lambda_parallel::lambda_parallel;

/// Derives a 32-byte key from each password, salted with its position, as lowercase hex.
#[lambda_parallel]
fn hash_batch(passwords: Vec<String>, first_index: u64, rounds: u32) -> Vec<String> {
    passwords
        .iter()
        .zip(first_index..)
        .map(|(password, index)| {
            let salt = format!("lambda-parallel/{index}");
            let mut key = [0_u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                password.as_bytes(),
                salt.as_bytes(),
                rounds,
                &mut key,
            );
            hex(&key)
        })
        .collect()
}

/// Lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| {
            [
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 15)],
            ]
        })
        .map(char::from)
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(200), |arg| arg.parse())?;
    let rounds: u32 = args.next().map_or(Ok(10_000), |arg| arg.parse())?;
    let workers = std::thread::available_parallelism()?.get();
    let passwords: Vec<String> = (0..count).map(|i| format!("correct horse {i}")).collect();
    println!("hashing {count} passwords, PBKDF2-HMAC-SHA256 with {rounds} rounds");

    let started = Instant::now();
    let serial = hash_batch(passwords.clone(), 0, rounds);
    let serial_time = started.elapsed();
    println!("serial, in this process:   {serial_time:>10.2?}");

    let started = Instant::now();
    let chunk = count.div_ceil(workers).max(1);
    let handles = passwords
        .chunks(chunk)
        .enumerate()
        .map(|(i, batch)| hash_batch::spawn(batch.to_vec(), (i * chunk) as u64, rounds))
        .collect::<Result<Vec<_>, _>>()?;
    let mut parallel = Vec::with_capacity(count);
    for handle in handles {
        parallel.extend(handle.join()?);
    }
    let parallel_time = started.elapsed();
    println!("{workers} worker processes:      {parallel_time:>10.2?}");

    assert_eq!(parallel, serial, "the workers computed the same hashes");
    println!(
        "speedup {:.2}x; all {count} hashes match; first: {}",
        serial_time.as_secs_f64() / parallel_time.as_secs_f64(),
        parallel.first().map_or("-", String::as_str)
    );
    Ok(())
}
