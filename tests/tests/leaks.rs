//! Nothing outlives a worker: no zombie, no open file descriptor, whatever way it ended.
//!
//! One test in this binary, so that no other test opens files or forks while it counts.

use std::time::Duration;

use lambda_parallel::lambda_parallel;
use lambda_parallel_tests::{children, open_fds};

#[lambda_parallel]
fn work(i: u32) -> Result<u32, String> {
    match i % 6 {
        0 => Ok(i),
        1 => Err(format!("task {i} refused")),
        2 => panic!("task {i} panicked"),
        3 => std::process::exit(4),
        4 => std::process::abort(),
        _ => {
            std::thread::sleep(Duration::from_secs(600));
            Ok(i)
        }
    }
}

#[test]
fn two_hundred_spawns_leave_no_zombie_and_no_fd() {
    let fds = open_fds();
    let kids = children();
    for i in 0..200 {
        let handle = work::spawn(i).unwrap();
        let outcome = match i % 12 {
            // Every other sleeper is left to its handle's drop, the rest time out.
            11 => {
                drop(handle);
                continue;
            }
            5 => handle.join_timeout(Duration::from_millis(1)),
            _ => handle.join(),
        };
        match i % 6 {
            0 => assert_eq!(outcome.unwrap(), Ok(i)),
            1 => assert_eq!(outcome.unwrap(), Err(format!("task {i} refused"))),
            2 => assert!(outcome.unwrap_err().is_panic()),
            3 => assert_eq!(outcome.unwrap_err().exit_code(), Some(4)),
            4 => assert_eq!(outcome.unwrap_err().signal_name(), Some("SIGABRT")),
            _ => assert!(outcome.unwrap_err().is_timeout()),
        }
    }
    assert_eq!(children(), kids, "every worker was reaped");
    assert_eq!(open_fds(), fds, "every pipe and pidfd was closed");
}
