//! The operating system in one place: processes (alive, groups, signals),
//! descriptors a child inherits, and private files and folders. Every `unsafe`
//! call of the crate is here, each with why it is sound.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A process with this pid exists (it may belong to another user).
pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// The process leads its own process group.
pub(crate) fn leads_group(pid: i32) -> bool {
    // SAFETY: getpgid(2) only reads the process table.
    pid > 0 && unsafe { libc::getpgid(pid) } == pid
}

/// Live processes in the process group `pgid` (from /proc).
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        // SAFETY: getpgid(2) only reads the process table.
        .filter(|pid| *pid > 1 && unsafe { libc::getpgid(*pid) } == pgid)
        .collect()
}

/// Signal one process. Callers have checked it is one of ours.
pub(crate) fn signal(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill(2) touches no memory; pid > 0 names one process.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Signal a process group. Callers pass the pgid of a child they started and
/// have not reaped, so the group cannot be someone else's.
pub(crate) fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals that group; no memory is touched.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Let the child `command` starts inherit these descriptors (they are
/// close-on-exec in the parent, as Rust opens everything).
pub(crate) fn inherit_fds(command: &mut tokio::process::Command, fds: Vec<i32>) {
    // SAFETY: runs in the forked child before exec; fcntl(2) is
    // async-signal-safe and touches only the listed descriptors, which stay
    // open in the parent for the whole life of the child.
    unsafe {
        command.pre_exec(move || {
            for fd in &fds {
                if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Write a new private file (mode 0600): never through a symlink, never into
/// a file that already exists (another user's hard link, say).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)
}

/// Create a new private folder (0700 whatever the umask); one that already
/// exists is an error, never reused.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(path)?;
    make_private(path)
}

/// Make a folder or file ours alone (0700), whatever the umask made it.
pub(crate) fn make_private(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_and_folders_are_new_and_ours_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("d");
        create_private_dir(&dir).expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert!(
            create_private_dir(&dir).is_err(),
            "an existing folder is not reused"
        );
        let file = dir.join("key.pem");
        write_private(&file, b"secret").expect("write");
        assert_eq!(mode(&file), 0o600);
        assert!(write_private(&file, b"again").is_err(), "never overwritten");
        let link = dir.join("link");
        std::os::unix::fs::symlink(root.path().join("elsewhere"), &link).expect("symlink");
        assert!(
            write_private(&link, b"x").is_err(),
            "never through a symlink"
        );
        assert!(!root.path().join("elsewhere").exists());
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_nothing() {
        assert!(alive(std::process::id().cast_signed()));
        assert!(!alive(0));
        assert!(!alive(-1));
    }
}
