//! What a caller sees when a worker fails: each outcome is its own, descriptive error.
//!
//! ```text
//! cargo run --example errors
//! ```

use std::time::Duration;

use lambda_parallel::lambda_parallel;

/// Misbehaves in the way its argument names.
#[lambda_parallel]
fn misbehave(how: String) -> u32 {
    match how.as_str() {
        "panic" => panic!("the input was {how:?}"),
        "abort" => std::process::abort(),
        "exit" => std::process::exit(3),
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        "oom" => {
            // Reserve far more than any machine has: allocation fails and the process aborts.
            let huge = std::hint::black_box(Vec::<u8>::with_capacity(usize::MAX / 2));
            u32::from(huge.capacity() > 0)
        }
        _ => 42,
    }
}

fn main() -> Result<(), lambda_parallel::Error> {
    for how in ["fine", "panic", "abort", "exit", "oom", "hang"] {
        let handle = misbehave::spawn(how.to_owned())?;
        match handle.join_timeout(Duration::from_millis(300)) {
            Ok(value) => println!("{how:>5}: returned {value}"),
            Err(err) if err.is_panic() => println!(
                "{how:>5}: panicked at {}: {}",
                err.panic_location()
                    .map_or("?".to_owned(), ToString::to_string),
                err.panic_message().unwrap_or_default()
            ),
            Err(err) => println!("{how:>5}: {err}"),
        }
    }
    let mut handle = misbehave::spawn("hang".to_owned())?;
    handle.kill()?;
    println!(" kill: {}", handle.join().unwrap_err());
    Ok(())
}
