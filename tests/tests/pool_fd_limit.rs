//! A pool needs a few descriptors per worker, whatever the number of tasks: 100,000 tasks run
//! under Lambda's limit of 1024 open files.
//!
//! One test in this binary: it lowers the process's own descriptor limit, and counts.

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{children, open_fds};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn map_of_100_000_tasks_under_1024_open_files() {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 1024.min(hard), hard).unwrap();
    let fds = open_fds();
    let kids = children();

    let pool = Pool::new(4).unwrap();
    let squares = pool.map(square, 0..100_000).unwrap();
    assert!(squares.iter().zip(0_u64..).all(|(s, x)| *s == x * x));
    // While tasks stream through, the pool holds its workers' descriptors (both ends of the
    // request pipe, the result pipe's read end and a pidfd), the two ends of its bell (the pipe
    // that wakes a caller asleep in `poll` when another submits), and nothing per task.
    let bound = fds.len() + 4 * 4 + 2;
    for (i, square) in pool.imap(square, 0..100_000).enumerate() {
        assert_eq!(square.unwrap(), (i * i) as u64);
        if i % 10_000 == 0 {
            let open = open_fds().len();
            assert!(open <= bound, "{open} descriptors open at task {i}");
        }
    }
    drop(pool);

    assert_eq!(open_fds(), fds, "every descriptor was closed");
    assert_eq!(children(), kids, "every worker was reaped");
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
}
