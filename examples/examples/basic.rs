//! The smallest use: mark a function, call it as before, or run it in a worker process.
//!
//! ```text
//! cargo run --example basic
//! ```

use lambda_parallel::lambda_parallel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum CheckError {
    TooShort { len: usize },
}

/// Checks a password and returns its strength score.
#[lambda_parallel]
fn check_password(password: String, min_len: usize) -> Result<u32, CheckError> {
    if password.len() < min_len {
        return Err(CheckError::TooShort {
            len: password.len(),
        });
    }
    let classes = [char::is_lowercase, char::is_uppercase, char::is_numeric];
    let score = classes
        .iter()
        .filter(|class| password.chars().any(**class))
        .count();
    Ok(u32::try_from(score * password.len()).unwrap_or(u32::MAX))
}

fn main() -> Result<(), lambda_parallel::Error> {
    // The plain call is unchanged.
    println!(
        "in this process: {:?}",
        check_password("Tr0ub4dor".into(), 8)
    );

    // The same function in a forked worker process.
    let handle = check_password::spawn("Tr0ub4dor".into(), 8)?;
    println!("worker pid {}", handle.pid());
    println!("in a worker:     {:?}", handle.join()?);

    // The worker's own `Err` comes back typed.
    let short = check_password::spawn("abc".into(), 8)?.join()?;
    println!("too short:       {short:?}");
    Ok(())
}
