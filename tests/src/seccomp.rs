//! A seccomp filter that refuses one system call, for the tests of how the runtime copes with a
//! host that forbids it (a container's profile, an old kernel).
//!
//! The filter is a handful of classic BPF instructions written out by hand: on this machine's
//! architecture, the call numbered `syscall` fails with `errno`; every other call is allowed.
//! It holds for the calling thread and every process it forks from then on, so a test binary
//! installs it first thing in `main`, before `lambda_parallel::init` and before any thread.

/// The `AUDIT_ARCH_*` value of the architecture this is built for, which the filter checks so
/// that a call number is never read in another architecture's table.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Offsets in `struct seccomp_data`: the call number, then the architecture.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

fn statement(code: u32, k: u32) -> libc::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(code).expect("BPF opcodes fit in 16 bits"),
        jt,
        jf,
        k,
    }
}

/// Makes every later call of `syscall` (a `libc::SYS_*` number) in this process and its
/// children fail with `errno`.
///
/// # Panics
///
/// Panics if the filter cannot be installed.
pub fn refuse(syscall: libc::c_long, errno: i32) {
    let nr = u32::try_from(syscall).expect("system call numbers are small");
    let errno = u32::try_from(errno).expect("error numbers are small");
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let equals = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let program = [
        statement(load, ARCH_OFFSET),
        // Another architecture's calls: allowed (the next instruction but one).
        jump(equals, AUDIT_ARCH, 1, 0),
        statement(ret, libc::SECCOMP_RET_ALLOW),
        statement(load, NR_OFFSET),
        jump(equals, nr, 0, 1),
        statement(
            ret,
            libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA),
        ),
        statement(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).expect("the program is short"),
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes an integer flag and four ignored zeros; it is what
    // allows an unprivileged process to install a filter.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        ret,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &raw const fprog,
        )
    };
    assert_eq!(ret, 0, "seccomp: {}", std::io::Error::last_os_error());
}
