//! A pool, or a one-off worker's handle, belongs to the process that made it: in a copy of the
//! caller made by a raw `fork()`, it is inert. Dropping it there touches nothing of the
//! parent's, and using it fails at once with an error that says so (issue #11, case 8).

use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Pool};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult};

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Runs `body` in a raw fork of this process and returns its exit code; a child that hangs
/// is killed after a few seconds and reported as `None`.
fn in_a_fork(body: impl FnOnce() -> i32) -> Option<i32> {
    // SAFETY: the child runs `body`, which touches only what this test made (the pool or the
    // handle, whose locks no other thread holds), and ends with `_exit`.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(99);
            // SAFETY: `_exit` ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let give_up = Instant::now() + Duration::from_secs(5);
            loop {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)).unwrap() {
                    WaitStatus::Exited(_, code) => return Some(code),
                    WaitStatus::StillAlive if Instant::now() < give_up => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    _ => {
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
                        let _ = waitpid(child, None);
                        return None;
                    }
                }
            }
        }
    }
}

#[test]
fn a_forked_copy_of_a_pool_is_inert() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
    let pids = pool.pids();
    // The copy's calls fail at once and say why; its drop leaves the parent's workers alone.
    let code = in_a_fork(|| {
        let pool = unsafe_copy(&pool);
        let Err(err) = pool.apply(square, (3,)) else {
            return 1;
        };
        if !err.is_closed() || !err.to_string().contains("another process") {
            return 2;
        }
        if pool.map_each(square, 0..3).iter().any(Result::is_ok) {
            return 3;
        }
        drop(pool);
        0
    });
    assert_eq!(code, Some(0), "the forked copy hung (None) or misbehaved");
    assert_eq!(pool.pids(), pids, "the copy's drop ended a worker");
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
}

#[test]
fn a_forked_copy_of_a_join_handle_is_inert() {
    let handle = nap::spawn(300).unwrap();
    let code = in_a_fork(|| {
        let mut copy = unsafe_copy(&handle);
        if copy.kill().is_ok() {
            return 1;
        }
        drop(copy);
        0
    });
    assert_eq!(code, Some(0), "the forked copy hung (None) or misbehaved");
    assert_eq!(
        handle.join().unwrap(),
        300,
        "the copy's drop killed the worker"
    );
}

/// The child's copy of `handle`, to drop there: the child owns its copy of the memory, and the
/// parent's handle is never touched in the child.
fn unsafe_copy<T>(handle: &T) -> T {
    // SAFETY: runs only in the forked child, whose copy of `handle` is never used or dropped
    // again there (the child ends with `_exit`, running no destructor): this is the one owner.
    unsafe { std::ptr::read(handle) }
}
