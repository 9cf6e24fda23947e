//! The private folder of a run: mode 0700, removed at the end. It records the
//! harness's pid, so that a later run can clean up after one that was killed
//! (its folder, and any nginx it left running).

use std::path::{Path, PathBuf};

use super::local::nginx::signal_group;

const PREFIX: &str = "mtls-e2e-";
const OWNER: &str = "owner.pid";

pub struct RunDir {
    dir: tempfile::TempDir,
}

impl RunDir {
    pub fn create() -> std::io::Result<RunDir> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir()?;
        // 0700 whatever the umask, before anything is written into it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        std::fs::write(dir.path().join(OWNER), std::process::id().to_string())?;
        Ok(RunDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new private subfolder (0700 whatever the umask); one that already
    /// exists is never reused.
    pub fn subdir(&self, name: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let path = self.dir.path().join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(path)
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Remove folders of runs whose harness is gone, stopping any nginx they left.
/// Returns what was cleaned, for the log.
pub fn sweep_stale() -> Vec<String> {
    let mut cleaned = Vec::new();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return cleaned;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PREFIX));
        if !is_ours || !path.is_dir() {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        match owner {
            Some(pid) if alive(pid) => continue,
            None => continue,
            Some(_) => {}
        }
        let mut stopped = 0;
        for pid_file in find_files(&path, "nginx.pid") {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
                && alive(pid)
            {
                signal_group(pid, libc::SIGKILL);
                stopped += 1;
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

fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(find_files(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
