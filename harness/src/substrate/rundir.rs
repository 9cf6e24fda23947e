//! The private folder of a run: mode 0700, removed at the end. It records the
//! harness's pid, so that a later run can clean up after one that was killed
//! (its folder, and any nginx it left running).

use std::path::{Path, PathBuf};

use super::local::nginx::signal_group;
use crate::sys::{self, alive, group_members, leads_group};

const PREFIX: &str = "mtls-e2e-";
const OWNER: &str = "owner.pid";

pub(crate) struct RunDir {
    dir: tempfile::TempDir,
}

impl RunDir {
    pub(crate) fn create() -> std::io::Result<RunDir> {
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir()?;
        // 0700 whatever the umask, before anything is written into it.
        sys::make_private(dir.path())?;
        let pid = std::process::id().cast_signed();
        let marker = match start_time(pid) {
            Some(start) => format!("{pid} {start}"),
            None => pid.to_string(),
        };
        std::fs::write(dir.path().join(OWNER), marker)?;
        Ok(RunDir { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new private subfolder (0700 whatever the umask); one that already
    /// exists is never reused.
    pub(crate) fn subdir(&self, name: &str) -> std::io::Result<PathBuf> {
        let path = self.dir.path().join(name);
        sys::create_private_dir(&path)?;
        Ok(path)
    }
}

/// When `pid` started (clock ticks since boot, /proc/PID/stat field 22): a
/// pid and its start time name one process, even after the pid is reused.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields follow the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The harness a marker names (`pid` or `pid start-time`) is still running.
fn harness_alive(marker: &str) -> bool {
    let mut words = marker.split_whitespace();
    let Some(pid) = words.next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    match words.next().and_then(|s| s.parse::<u64>().ok()) {
        Some(start) => alive(pid) && start_time(pid).is_none_or(|now| now == start),
        None => alive(pid),
    }
}

/// Remove folders of runs whose harness is gone, stopping any nginx they left.
/// Returns what was cleaned, for the log.
pub(crate) fn sweep_stale() -> Vec<String> {
    sweep_stale_in(&std::env::temp_dir())
}

/// How deep and how wide a stale folder is searched for nginx pid files.
const SWEEP_DEPTH: usize = 6;
const SWEEP_ENTRIES: usize = 10_000;

/// The sweep trusts nothing it finds in a shared temp folder: only a real
/// folder (never a symlink) named like ours, owned by this user, mode 0700,
/// holding our marker, whose harness is gone; inside it, a pid is signalled
/// only if /proc shows an nginx whose command line points into that folder;
/// symlinks are never followed and the search is bounded.
pub(crate) fn sweep_stale_in(root: &Path) -> Vec<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut cleaned = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return cleaned;
    };
    let uid = sys::euid();
    for entry in entries.flatten() {
        let path = entry.path();
        let named_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PREFIX));
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !named_ours
            || !meta.file_type().is_dir()
            || meta.uid() != uid
            || meta.permissions().mode() & 0o777 != 0o700
        {
            continue;
        }
        let marker = path.join(OWNER);
        let owner = std::fs::symlink_metadata(&marker)
            .ok()
            .filter(|m| m.file_type().is_file() && m.uid() == uid)
            .and_then(|_| std::fs::read_to_string(&marker).ok());
        match owner {
            Some(text) if !harness_alive(&text) => {}
            // A run that is still going, or not a marker of ours.
            _ => continue,
        }
        let mut stopped = 0;
        let mut budget = SWEEP_ENTRIES;
        for pid_file in find_files(&path, "nginx.pid", SWEEP_DEPTH, &mut budget) {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                if is_nginx_of(pid, &path) && leads_group(pid) {
                    signal_group(pid, libc::SIGKILL);
                    stopped += 1;
                } else {
                    // The master is gone; its workers may not be (same group, cwd inside).
                    for worker in group_members(pid)
                        .into_iter()
                        .filter(|w| is_nginx_of(*w, &path))
                    {
                        // An nginx of this stale folder, checked just above.
                        sys::signal(worker, libc::SIGKILL);
                        stopped += 1;
                    }
                }
            }
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            cleaned.push(format!(
                "{} (left by a run that ended abruptly; stopped {stopped} nginx)",
                path.display()
            ));
        }
    }
    cleaned
}

/// `pid` is a live nginx of the run folder `folder`: its command line names
/// nginx, and it or its working folder points inside that folder.
fn is_nginx_of(pid: i32, folder: &Path) -> bool {
    if pid <= 1 || !alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // nginx rewrites its command line into its process title
    // (`nginx: master process /usr/sbin/nginx -p ...`), so read it as text.
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let first = text.split_whitespace().next().unwrap_or_default();
    let is_nginx = first
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("nginx"));
    let inside = format!("{}/", folder.display());
    let cwd_inside =
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(folder));
    let points_inside = text.contains(&inside) || cwd_inside;
    is_nginx && points_inside
}

/// Files named `name` under `dir`, never following symlinks, at most `depth`
/// levels down and `budget` entries in all.
fn find_files(dir: &Path, name: &str, depth: usize, budget: &mut usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() && depth > 0 {
            out.extend(find_files(&path, name, depth - 1, budget));
        } else if kind.is_file() && path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    /// Alive and not a zombie (a killed child of ours lingers until reaped).
    fn alive_process(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
                    .map(|z| !z)
            })
            .unwrap_or(false)
    }

    fn planted(root: &Path, name: &str, mode: u32) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
        // A harness pid that cannot be alive.
        std::fs::write(dir.join(OWNER), "2147483646").expect("marker");
        dir
    }

    /// The outside tester's reproducers: a pid file naming an unrelated
    /// process group, symlinks that loop, a folder someone else could write.
    #[test]
    fn a_reused_pid_does_not_keep_a_stale_folder() {
        let me = std::process::id().cast_signed();
        let start = start_time(me).expect("/proc");
        assert!(harness_alive(&format!("{me} {start}")));
        assert!(
            !harness_alive(&format!("{me} {}", start + 1)),
            "same pid, another process"
        );
        assert!(harness_alive(&me.to_string()));
        assert!(!harness_alive("2147483646"));
        assert!(!harness_alive("garbage"));
    }

    #[test]
    fn the_sweep_touches_only_what_a_run_of_ours_left() {
        let root = tempfile::tempdir().expect("root");
        let mut victim = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let pid = victim.id();
        let stale = planted(root.path(), "mtls-e2e-x", 0o700);
        std::fs::create_dir(stale.join("n")).expect("mkdir");
        std::fs::write(stale.join("n/nginx.pid"), pid.to_string()).expect("pid");
        let looping = planted(root.path(), "mtls-e2e-loop", 0o700);
        std::os::unix::fs::symlink(".", looping.join("a")).expect("symlink");
        std::os::unix::fs::symlink(".", looping.join("b")).expect("symlink");
        let open = planted(root.path(), "mtls-e2e-open", 0o755);
        // A worker left by a master that died: same process group, cwd in the folder.
        let orphaned = planted(root.path(), "mtls-e2e-orphan", 0o700);
        let nginx_dir = orphaned.join("nginx");
        std::fs::create_dir(&nginx_dir).expect("mkdir");
        let leader = std::process::Command::new("bash")
            .args([
                "-c",
                "(exec -a 'nginx: worker process' sleep 600 >/dev/null 2>&1 </dev/null) & echo $!",
            ])
            .current_dir(&nginx_dir)
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        let master = leader.id();
        let out = leader.wait_with_output().expect("leader exits");
        let orphan: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("worker pid");
        std::fs::write(nginx_dir.join("nginx.pid"), master.to_string()).expect("pid");
        let cleaned = sweep_stale_in(root.path());
        assert!(
            alive(pid.cast_signed()),
            "the sweep killed a process that is not this folder's nginx"
        );
        assert!(
            !stale.exists() && !looping.exists(),
            "stale folders of ours are removed"
        );
        assert!(
            open.exists(),
            "a folder that is not 0700 is not ours to remove"
        );
        assert_eq!(cleaned.len(), 3, "{cleaned:?}");
        let _ = victim.kill();
        let _ = victim.wait();
        // The orphaned worker is not our child: init reaps it once it is killed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive_process(orphan) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let survived = alive_process(orphan);
        if survived {
            // The worker this test started.
            sys::signal(orphan, libc::SIGKILL);
        }
        assert!(!survived, "the orphaned nginx worker was not stopped");
    }

    #[test]
    fn the_run_folder_is_private_and_subfolders_are_never_reused() {
        let run = RunDir::create().expect("run folder");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(run.path()), 0o700);
        let sub = run.subdir("01-x").expect("subfolder");
        assert_eq!(mode(&sub), 0o700);
        assert!(
            run.subdir("01-x").is_err(),
            "an existing subfolder must not be reused"
        );
    }
}
