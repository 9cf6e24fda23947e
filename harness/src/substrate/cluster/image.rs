//! Our container image, built without pulling anything: the host-built
//! `mtls-e2e` binary and the shared libraries it links, in an otherwise empty
//! root, turned into an image by `docker import` (no base image, no registry),
//! then loaded into kind. The same image serves `aigw`, `webui` and `ollama`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ClusterError, run_tool, run_tool_with_input, tool};

/// The image the component manifests name (`manifests/components/*.yaml`).
pub const DEFAULT_IMAGE: &str = "mtls-e2e:e2e";

/// Where the binary sits in the image, and its entrypoint.
pub(crate) const ENTRYPOINT: &str = "/mtls-e2e";

/// `docker import` changes: the entrypoint, and an unprivileged user (the mocks
/// listen on ports above 1024 and only read their mounted Secrets).
pub(crate) const IMPORT_CHANGES: [&str; 2] = ["ENTRYPOINT [\"/mtls-e2e\"]", "USER 65534:65534"];

/// Shared libraries `binary` loads, as absolute paths (from `ldd`).
pub(crate) fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let ldd = tool("ldd").map_err(|_| {
        ClusterError::Missing(
            "ldd is not on PATH; it comes with the C library (`sudo apt-get install libc-bin`)"
                .into(),
        )
    })?;
    let out = run_tool(
        &ldd,
        &[&binary.display().to_string()],
        Duration::from_secs(30),
    )?;
    Ok(parse_ldd(&out))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
pub(crate) fn parse_ldd(output: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    libs
}

/// Lay out the image's root in `root`: the binary at `/mtls-e2e`, its libraries
/// at their paths, an empty `/tmp`.
pub(crate) fn rootfs(root: &Path, binary: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let io = |what: &Path, e: std::io::Error| {
        ClusterError::Failed(format!("building the image root: {}: {e}", what.display()))
    };
    let mut files = vec![PathBuf::from(ENTRYPOINT)];
    std::fs::copy(binary, root.join("mtls-e2e")).map_err(|e| io(binary, e))?;
    for lib in shared_libraries(binary)? {
        let target = root.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        // Copy the file a symlink points to, under the link's name.
        std::fs::copy(&lib, &target).map_err(|e| io(&lib, e))?;
        files.push(lib);
    }
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| io(&tmp, e))?;
    Ok(files)
}

/// The `docker import` arguments for `image`.
pub(crate) fn import_args(image: &str) -> Vec<String> {
    let mut args = vec!["import".to_string()];
    for change in IMPORT_CHANGES {
        args.extend(["--change".to_string(), change.to_string()]);
    }
    args.extend(["-".to_string(), image.to_string()]);
    args
}

/// Build `image` from `binary` in the local Docker daemon. Nothing is pulled.
///
/// # Errors
///
/// Docker or ldd is missing or fails, or the binary's files cannot be read.
pub fn build(image: &str, binary: &Path) -> Result<(), ClusterError> {
    let docker = tool("docker")?;
    let tar = tool("tar").map_err(|_| {
        ClusterError::Missing("tar is not on PATH (`sudo apt-get install tar`)".into())
    })?;
    let root = tempfile::Builder::new()
        .prefix("mtls-e2e-image-")
        .tempdir()
        .map_err(|e| ClusterError::Failed(format!("cannot create a temporary folder: {e}")))?;
    rootfs(root.path(), binary)?;
    let archive = root.path().with_extension("tar");
    let dir = root.path().display().to_string();
    let archive_arg = archive.display().to_string();
    let tarred = run_tool(
        &tar,
        &[
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-C",
            &dir,
            "-cf",
            &archive_arg,
            ".",
        ],
        Duration::from_secs(120),
    );
    let result = tarred.and_then(|_| {
        let bytes = std::fs::read(&archive)
            .map_err(|e| ClusterError::Failed(format!("reading {}: {e}", archive.display())))?;
        let args = import_args(image);
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        run_tool_with_input(&docker, &words, Some(&bytes), Duration::from_secs(300)).map(|_| ())
    });
    let _ = std::fs::remove_file(&archive);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn the_root_holds_the_binary_and_its_libraries() {
        let root = tempfile::tempdir().expect("tempdir");
        let binary = std::env::current_exe().expect("exe");
        let files = rootfs(root.path(), &binary).expect("rootfs");
        assert!(root.path().join("mtls-e2e").is_file());
        for f in &files[1..] {
            assert!(
                root.path()
                    .join(f.strip_prefix("/").expect("absolute"))
                    .is_file(),
                "{}",
                f.display()
            );
        }
        assert!(root.path().join("tmp").is_dir());
    }
}
