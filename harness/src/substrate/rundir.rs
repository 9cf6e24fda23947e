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
        // tempfile creates the folder with mode 0700.
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir()?;
        std::fs::write(dir.path().join(OWNER), std::process::id().to_string())?;
        Ok(RunDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A private subfolder.
    pub fn subdir(&self, name: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let path = self.dir.path().join(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)?;
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
