//! A one-off worker started while a pool exists holds no descriptor of the pool's workers, so
//! that nothing it does to its own descriptors can reach them (issue #11, case 11).
//!
//! One test: it counts and links this process's descriptors, and lets a worker read and write
//! every descriptor it has.

use std::fs;
use std::os::fd::{BorrowedFd, RawFd};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::open_fds;

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// What `/proc/<pid>/fd/<fd>` links to (`pipe:[1234]`, …), and for a pidfd, which process it
/// names (`pidfd 4242`, from its fdinfo): a pidfd's link does not tell one from another.
fn target(pid: &str, fd: u32) -> Option<String> {
    let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_string_lossy().into_owned();
    if !link.contains("pidfd") {
        return Some(link);
    }
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let named = info.lines().find_map(|line| line.strip_prefix("Pid:"))?;
    Some(format!("pidfd {}", named.trim()))
}

/// What this worker's descriptors link to.
#[lambda_parallel]
fn own_fds() -> Vec<String> {
    open_fds()
        .into_iter()
        .filter_map(|fd| target("self", fd))
        .collect()
}

/// Reads what it can from every descriptor above stderr, and writes garbage to each.
#[lambda_parallel]
fn vandal() {
    for fd in open_fds().into_iter().filter(|&fd| fd > 2) {
        let Ok(raw) = RawFd::try_from(fd) else {
            continue;
        };
        // SAFETY: the descriptor is open in this process (it was just listed), and is only
        // borrowed for the calls below.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut buf = [0; 4096];
        let _ = nix::unistd::read(fd, &mut buf);
        let _ = nix::unistd::write(fd, b"\x05\x00\x00\x00garbage");
    }
}

#[test]
fn a_one_off_worker_holds_nothing_of_a_pools_workers() {
    let before = open_fds();
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
    let me = std::process::id().to_string();
    let pools: Vec<String> = open_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .filter_map(|fd| target(&me, fd))
        .collect();
    assert!(pools.len() >= 6, "the pool holds {pools:?}");

    let held = own_fds::spawn().unwrap().join().unwrap();
    let shared: Vec<&String> = held.iter().filter(|t| pools.contains(t)).collect();
    assert!(
        shared.is_empty(),
        "the one-off worker holds the pool's {shared:?}"
    );

    // Whatever it does to what it holds, the pool's workers never see it.
    let pids = pool.pids();
    let _ = vandal::spawn().unwrap().join();
    assert_eq!(
        pool.map(square, 0..16).unwrap(),
        (0..16).map(|x| x * x).collect::<Vec<_>>()
    );
    assert_eq!(pool.pids(), pids, "a pool worker was replaced");
}
