//! What the kernel says of its OOM kills: the count of processes it has killed for want of
//! memory, in this process's memory cgroup (where processes forked from it are counted too),
//! or else in the whole system. Plain reads of `/proc` and `/sys`.

use std::fs;
use std::path::PathBuf;

/// A file in which the kernel counts OOM kills, on a line `oom_kill N`.
#[derive(Debug)]
pub(crate) struct OomKills {
    path: PathBuf,
}

impl OomKills {
    /// Where this process's OOM kills are counted: its memory cgroup's `memory.events` (cgroup
    /// v2) or `memory.oom_control` (v1), else `/proc/vmstat`, which counts the system's (Linux
    /// 4.13 and later). `None` if none of them says.
    ///
    /// The kernel counts an OOM kill in the victim's cgroup (and, in v2, in every cgroup above
    /// it) before it sends the `SIGKILL`: whoever sees the victim's end sees the count raised.
    pub(crate) fn find() -> Option<OomKills> {
        let cgroups = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        [memory_v1(&cgroups, &mounts), memory_v2(&cgroups, &mounts)]
            .into_iter()
            .flatten()
            .chain([PathBuf::from("/proc/vmstat")])
            .map(|path| OomKills { path })
            .find(|counter| counter.read().is_some())
    }

    /// The count now, if the file can be read.
    pub(crate) fn read(&self) -> Option<u64> {
        let text = fs::read_to_string(&self.path).ok()?;
        count(&text)
    }
}

/// The value of the line `oom_kill N`.
fn count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// `memory.oom_control` of the v1 memory cgroup, whose line in `/proc/self/cgroup` is
/// `N:memory:/path` (the controllers comma-separated).
fn memory_v1(cgroups: &str, mounts: &str) -> Option<PathBuf> {
    let path = cgroups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })?;
    let dir = mounted(mounts, path, |fstype, options| {
        fstype == "cgroup" && options.split(',').any(|o| o == "memory")
    })?;
    Some(dir.join("memory.oom_control"))
}

/// `memory.events` of the v2 cgroup, whose line in `/proc/self/cgroup` is `0::/path`. (The root
/// cgroup has none; `/proc/vmstat` then counts the same kills.)
fn memory_v2(cgroups: &str, mounts: &str) -> Option<PathBuf> {
    let path = cgroups.lines().find_map(|line| line.strip_prefix("0::"))?;
    let dir = mounted(mounts, path, |fstype, _| fstype == "cgroup2")?;
    Some(dir.join("memory.events"))
}

/// Where the cgroup `path` of a hierarchy is, under the first mount of `/proc/self/mountinfo`
/// that `is_it` accepts (given the file system type and its options), and whose root holds the
/// path: the mount point, and the path below the mount's root.
fn mounted(mounts: &str, path: &str, is_it: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        // `id parent dev root mount-point options [optional…] - fstype source super-options`
        let (mount, fs) = line.split_once(" - ")?;
        let mut mount = mount.split(' ');
        let (root, point) = (mount.nth(3)?, mount.next()?);
        let mut fs = fs.split(' ');
        let (fstype, options) = (fs.next()?, fs.nth(1)?);
        if !is_it(fstype, options) {
            return None;
        }
        let below = match root {
            "/" => path,
            root => path
                .strip_prefix(root)
                .filter(|below| below.is_empty() || below.starts_with('/'))?,
        };
        let below = below.trim_start_matches('/');
        Some(PathBuf::from(point).join(below))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_v1_memory_cgroup_is_found_under_its_mount() {
        let cgroups = "5:devices:/\n4:memory:/box/fn\n0::/\n";
        assert_eq!(
            memory_v1(cgroups, MOUNTS).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/box/fn/memory.oom_control")
        );
        assert_eq!(
            memory_v2(cgroups, MOUNTS).unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/memory.events")
        );
    }

    #[test]
    fn a_v2_cgroup_is_found_below_the_root_of_a_bind_mount() {
        let mounts = "29 22 0:26 /box /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            memory_v2("0::/box/fn\n", mounts).unwrap(),
            PathBuf::from("/sys/fs/cgroup/fn/memory.events")
        );
        // A cgroup outside what the mount shows has no file to read.
        assert_eq!(memory_v2("0::/other\n", mounts), None);
        assert_eq!(memory_v2("0::/boxes\n", mounts), None);
        assert_eq!(memory_v1("0::/box/fn\n", mounts), None);
    }

    #[test]
    fn the_count_is_read_from_each_kind_of_file() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(count(v2), Some(2));
        assert_eq!(
            count("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"),
            Some(7)
        );
        assert_eq!(count("pgfault 100\noom_kill 0\n"), Some(0));
        assert_eq!(count("oom 1\n"), None);
    }

    #[test]
    fn this_process_has_a_count() {
        // Linux 4.13 and later count in `/proc/vmstat` at least.
        let counter = OomKills::find().unwrap();
        assert!(counter.read().is_some(), "{counter:?}");
    }
}
