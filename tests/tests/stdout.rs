//! Output the parent had buffered before a fork is printed once, not once more by the worker.
//!
//! The test runs itself again as a child process with the real stdout, since the test harness
//! captures `print!` in-process.

use std::process::Command;

use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn prints_a_line() -> u8 {
    println!("from the worker");
    1
}

const INNER: &str = "LAMBDA_PARALLEL_STDOUT_INNER";

#[test]
fn buffered_stdout_is_printed_once() {
    if std::env::var_os(INNER).is_some() {
        // Stdout is line-buffered: this stays in the parent's buffer across the fork.
        print!("<partial line>");
        assert_eq!(prints_a_line::spawn().unwrap().join().unwrap(), 1);
        println!("</partial line>");
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "buffered_stdout_is_printed_once", "--nocapture"])
        .env(INNER, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.matches("<partial line>").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("from the worker").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("</partial line>").count(), 1, "{stdout}");
}
